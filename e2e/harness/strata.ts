/**
 * Wrapper around the real Strata CLI (packages/agent/bin/run.js), run the way
 * PostgreSQL would run it from archive_command: as the postgres OS user.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAsPostgres, runCommand, shellQuote, type RunResult } from './postgres.js';

const HARNESS_DIR = path.dirname(fileURLToPath(import.meta.url));
/** Absolute path of the CLI entry point: found upwards from this file (source or e2e/dist). */
export const STRATA_BIN = findUp(path.join('packages', 'agent', 'bin', 'run.js'));

/** Node flags from the CLI's shebang (`#!/usr/bin/env -S node FLAGS`): run it as an installed strata runs. */
const NODE_FLAGS = (/^#!\S*env -S node((?:\s+--\S+)*)/.exec(fs.readFileSync(STRATA_BIN, 'utf8'))?.[1] ?? '')
  .trim()
  .split(/\s+/)
  .filter(Boolean);

function findUp(rel: string): string {
  for (let dir = HARNESS_DIR; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, rel);
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`${rel} not found above ${HARNESS_DIR}`);
  }
}

export interface RunStrataOptions {
  /** Config file path, appended as `--config <path>` (after the command, oclif-style). */
  config?: string;
  /** Merged over process.env. */
  env?: NodeJS.ProcessEnv;
  /** Run as the postgres OS user when we are root (default), like archive_command does. */
  asPostgres?: boolean;
  timeoutMs?: number;
  input?: string | Buffer;
  cwd?: string;
}

export interface StrataResult extends RunResult {
  /** Parsed stdout when args include --json and stdout is valid JSON. */
  json?: unknown;
}

export async function runStrata(args: string[], opts: RunStrataOptions = {}): Promise<StrataResult> {
  const { config, env, asPostgres = true, timeoutMs = 120_000, input, cwd } = opts;
  const fullArgs = [...NODE_FLAGS, STRATA_BIN, ...args, ...(config !== undefined ? ['--config', config] : [])];
  const run = asPostgres ? runAsPostgres : runCommand;
  const res: StrataResult = await run(process.execPath, fullArgs, { env, timeoutMs, input, cwd });
  if (args.includes('--json')) {
    try {
      res.json = JSON.parse(res.stdout) as unknown;
    } catch {
      // Leave json undefined: callers assert on it and see stdout/stderr in the failure.
    }
  }
  return res;
}

/**
 * `'/abs/node' '/abs/run.js'` for embedding in archive_command/restore_command,
 * e.g. `${strataCommandLine()} archive-push %p`. Absolute node path because the
 * server's PATH may not contain node.
 */
export function strataCommandLine(): string {
  return [process.execPath, ...NODE_FLAGS, STRATA_BIN].map(shellQuote).join(' ');
}

/**
 * Writes a Strata config for one cluster ("main") and one filesystem repository ("local");
 * `extra` adds top-level sections (as YAML flow mappings).
 */
export function writeStrataConfig(
  file: string,
  pg: { dataDir: string; socketDir: string; port: number },
  repoDir: string,
  extra: Record<string, unknown> = {},
  repos?: Record<string, unknown>[],
): void {
  const lines = [
    'clusters:',
    '  main:',
    `    pgdata: ${pg.dataDir}`,
    `    host: ${pg.socketDir}`,
    `    port: ${pg.port}`,
    '    user: postgres',
    'repos:',
    ...(repos ?? [{ name: 'local', plugin: 'fs', path: repoDir }]).map((r) => `  - ${JSON.stringify(r)}`),
    'compression: { plugin: zstd, level: 3 }',
    // Locks and agent state beside the config: every test cluster (all named "main") has its own.
    ...('stateDir' in extra ? [] : [`stateDir: ${JSON.stringify(path.join(path.dirname(path.resolve(file)), 'state'))}`]),
    ...Object.entries(extra).map(([k, v]) => `${k}: ${JSON.stringify(v)}`),
  ];
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}
