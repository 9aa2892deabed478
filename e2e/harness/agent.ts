import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import { STRATA_BIN } from './strata.js';

/** Driving `strata agent` in e2e tests: its config, the process, its state file and its metrics. */

export const agents = new Set<ChildProcess>();

/** Kills every agent (and its jobs: each runs in its own process group) a test started. */
export function killAgents(): void {
  for (const a of agents) if (a.exitCode === null && a.signalCode === null) process.kill(-a.pid!, 'SIGKILL');
}

export interface JobState {
  schedule: string;
  nextRun: string | null;
  last?: { outcome: string; message?: string; exitCode: number | null };
  runs: { succeeded: number; failed: number; skipped: number; interrupted: number };
}
export interface AgentState {
  pid: number;
  stoppedAt?: string;
  clusters: Record<
    string,
    {
      running?: { job: string; pid: number };
      jobs: Record<string, JobState>;
      lastBackup: Record<string, { label: string; bytes: number }>;
      lastRehearsal?: { passed: boolean; rtoSeconds?: number; rpoSeconds?: number; error?: string };
      lastCheck?: { rule321: boolean; copies: number; repositories: { repo: string; level: boolean }[] };
    }
  >;
}

/** The config the harness wrote, plus a schedule under clusters.main and an agent section. */
export function writeAgentConfig(c: { configPath: string }, base: string, schedule: Record<string, string>, metricsPort: number): void {
  const sched = Object.entries(schedule).map(([k, v]) => `      ${k}: "${v}"\n`);
  const text = base.replace('    user: postgres\n', `    user: postgres\n    schedule:\n${sched.join('')}`);
  fs.writeFileSync(c.configPath, `${text}agent: { metrics: { listen: "127.0.0.1:${metricsPort}" }, startFast: true, stopTimeout: 60 }\n`);
}

export function startAgent(configPath: string) {
  const asRoot = process.getuid?.() === 0;
  const args = [...(asRoot ? ['-u', 'postgres', '--', process.execPath] : []), STRATA_BIN, 'agent', '--config', configPath];
  const child = spawn(asRoot ? 'runuser' : process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  agents.add(child);
  const lines: string[] = [];
  let buf = '';
  child.stdout.on('data', (b: Buffer) => {
    buf += b.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  const stderr: string[] = [];
  child.stderr.on('data', (b: Buffer) => stderr.push(b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, lines, stderr, exited };
}

export function readState(stateDir: string): AgentState | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(stateDir, 'agent.json'), 'utf8')) as AgentState;
  } catch {
    return undefined;
  }
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs: number, diag: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${diag()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `p`, or an error after `timeoutMs` naming what hung, with `diag()` and the process tree. */
export async function within<T>(p: Promise<T>, timeoutMs: number, what: string, diag: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const ps = spawnSync('ps', ['-eo', 'pid,ppid,stat,etimes,args', '--forest'], { encoding: 'utf8' }).stdout;
      reject(new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}\n${diag()}\n${ps}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

export async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
  return res.text();
}

export function metric(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : undefined;
}
