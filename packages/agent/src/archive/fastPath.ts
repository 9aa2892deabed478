import type { Logger } from '@strata/core/base';
import { isStrataError } from '@strata/core/errors';
import type { GlobalFlags } from '../cli/context.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../cli/logger.js';
import { describeError, errorJson, exitCodeFor, formatJson, successJson } from '../cli/output.js';
import { PUSHER_COMMAND, pushAsync } from './asyncClient.js';
import { EXIT_NOT_ARCHIVED, EXIT_STOP_RECOVERY, isNotArchived } from './recoveryExit.js';
import { readCachedTarget } from './targetCache.js';

/**
 * archive-push and archive-get without oclif: PostgreSQL runs them once per WAL file, and loading
 * oclif and the command tree costs more than pushing a segment. bin/run.js sends these two
 * commands here; anything this parser does not recognise (--help, an unknown or repeated flag, a
 * missing argument) goes back to oclif, so its messages and exit codes stay the only ones.
 * The commands themselves are shared with the oclif classes (archive/push.ts, archive/get.ts) and
 * loaded only when needed: an async archive-push with a cached target needs neither.
 */
interface FastCommand {
  args: number;
  run(flags: GlobalFlags, args: string[], logger: Logger): Promise<unknown>;
  /** Exit code and whether to stay quiet, for a failure this command treats specially. */
  special?(err: unknown, args: string[]): number | undefined;
  failureExit?: number;
}

const COMMANDS: Record<string, FastCommand> = {
  'archive-push': {
    args: 1,
    run: async (flags, [walPath], logger) => {
      const target = readCachedTarget(flags);
      if (target) return pushAsync(target, walPath!, flags, logger);
      return (await import('./push.js')).runArchivePush(flags, walPath!, logger);
    },
  },
  'archive-get': {
    args: 2,
    run: async (flags, [walName, dest], logger) => (await import('./get.js')).runArchiveGet(flags, walName!, dest!, logger),
    // Exit 1, quietly, only when the file is simply not archived; any other failure stops recovery.
    special: (err, [walName]) => (isNotArchived(err, walName) ? EXIT_NOT_ARCHIVED : undefined),
    failureExit: EXIT_STOP_RECOVERY,
  },
  // Internal: the background pusher an async archive-push starts (archive/pusher.ts).
  [PUSHER_COMMAND]: {
    args: 1,
    run: async (flags, [walDir], logger) => (await import('./pusher.js')).runArchivePusher(flags, walDir!, logger),
  },
};

const VALUE_FLAGS = new Set(['config', 'cluster', 'repo', 'log-level', 'spool']);

export interface ParsedArgv {
  id: string;
  flags: GlobalFlags;
  json: boolean;
  args: string[];
}

/** Parses what PostgreSQL and the docs write; undefined for anything else (oclif handles it). */
export function parseFastArgv(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ParsedArgv | undefined {
  const [id, ...rest] = argv;
  const command = id === undefined ? undefined : COMMANDS[id];
  if (!command) return undefined;
  const values: Record<string, string> = {};
  let json = false;
  const args: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const token = rest[i]!;
    if (!token.startsWith('-')) {
      args.push(token);
      continue;
    }
    if (token === '--json' && !json) {
      json = true;
      continue;
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(token);
    const name = m?.[1];
    if (!m || !name || !VALUE_FLAGS.has(name) || name in values) return undefined;
    const value = m[2] ?? rest[++i];
    if (value === undefined || value === '' || (m[2] === undefined && value.startsWith('-'))) return undefined;
    values[name] = value;
  }
  if (args.length !== command.args) return undefined;
  if (values.spool !== undefined && id !== 'archive-push') return undefined;
  const level = values['log-level'] ?? 'warn';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) return undefined;
  // oclif also turns --json on with <BIN>_CONTENT_TYPE=json.
  json ||= env.STRATA_CONTENT_TYPE?.toLowerCase() === 'json';
  return {
    id: id!,
    flags: {
      config: values.config,
      cluster: values.cluster,
      repo: values.repo,
      'log-level': level as LogLevel,
      ...(values.spool !== undefined ? { spool: values.spool } : {}),
    },
    json,
    args,
  };
}

/** Runs the command if the fast path handles this argv; false means "let oclif do it". */
export async function runFast(argv: readonly string[]): Promise<boolean> {
  const parsed = parseFastArgv(argv);
  if (!parsed) return false;
  const command = COMMANDS[parsed.id]!;
  const level = parsed.flags['log-level'] ?? 'warn';
  const logger = createLogger(level, parsed.id);
  const warnings: string[] = [];
  try {
    const result = await command.run(parsed.flags, parsed.args, logger);
    if (parsed.json) process.stdout.write(formatJson(successJson(result, warnings)));
  } catch (err) {
    const special = command.special?.(err, parsed.args);
    process.exitCode = special ?? command.failureExit ?? exitCodeFor(err);
    if (parsed.json) process.stdout.write(formatJson(errorJson(err, warnings)));
    else if (special !== undefined) logger.debug({ wal: parsed.args[0] }, 'not archived');
    else if (isStrataError(err)) process.stderr.write(describeError(err, level));
    else process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  }
  return true;
}
