import { spawn, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import * as readline from 'node:readline';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger as PinoLogger } from 'pino';
import { StrataError, resolveStateDir, type CheckReport, type Repo, type StrataConfig } from '@strata/core';
import { loadConfig, type LoadedConfig } from '../config/loadConfig.js';
import { openRepository } from '../plugins/loadPlugins.js';
import { BIN, nodeFlags } from '../self.js';
import { jobArgs } from './jobs.js';
import { MetricsServer } from './metrics.js';
import {
  JOB_KINDS,
  emptyClusterState,
  emptyRuns,
  readAgentState,
  writeAgentState,
  type AgentState,
  type CheckRecord,
  type ClusterState,
  type JobKind,
  type JobOutcome,
} from './state.js';

/** Exit code of a job that found its cluster locked by another (docs/exit-codes.md: Precondition). */
const EXIT_LOCKED = 9;

interface RunningJob {
  cluster: string;
  kind: JobKind;
  child: ChildProcess;
  done: Promise<void>;
}

/**
 * The daemon: schedules each cluster's jobs, runs each as a child `strata` process (a crashed or
 * killed job cannot take the daemon with it), never two at once on one cluster, keeps the
 * job-state file, and serves metrics.
 */
export class Agent {
  private loaded!: LoadedConfig;
  private stateDir!: string;
  private state!: AgentState;
  private tasks: ScheduledTask[] = [];
  private readonly running = new Map<string, RunningJob>();
  /** Jobs waiting for their cluster, in trigger order. */
  private readonly pending = new Map<string, JobKind[]>();
  private repos = new Map<string, Repo>();
  private metrics: MetricsServer | undefined;
  private stopping = false;
  private stopped!: () => void;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly configFile: string,
    private readonly log: PinoLogger,
  ) {}

  /** Runs until SIGTERM/SIGINT (or stop()); SIGHUP reloads the config. */
  async run(): Promise<void> {
    this.loaded = await loadConfig(this.configFile);
    validateSchedules(this.loaded.config);
    this.stateDir = await resolveStateDir(this.loaded.config.stateDir);
    const previous = await readAgentState(this.stateDir).catch(() => undefined);
    this.state = {
      format: 1,
      pid: process.pid,
      hostname: os.hostname(),
      config: this.loaded.path,
      startedAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
      clusters: {},
    };
    for (const [name, c] of Object.entries(previous?.clusters ?? {})) {
      // Counters and last results survive a restart; a job "running" in a dead agent is not running.
      const { running: _gone, ...rest } = c;
      this.state.clusters[name] = rest;
    }
    await this.openRepos();
    this.schedule();
    await this.startMetrics();
    await this.saveState();
    const finished = new Promise<void>((resolve) => (this.stopped = resolve));
    const onStop = (sig: NodeJS.Signals) => {
      this.log.info({ signal: sig }, 'stopping: no new jobs; waiting for running jobs');
      void this.stop();
    };
    const onHup = () => void this.reload();
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGHUP', onHup);
    this.log.info(
      { config: this.loaded.path, stateDir: this.stateDir, clusters: Object.keys(this.loaded.config.clusters), pid: process.pid },
      'strata agent started',
    );
    try {
      await finished;
    } finally {
      process.off('SIGTERM', onStop);
      process.off('SIGINT', onStop);
      process.off('SIGHUP', onHup);
    }
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.pending.clear();
    await this.unschedule();
    const timeoutMs = this.loaded.config.agent.stopTimeout * 1000;
    for (const job of this.running.values()) {
      this.log.info({ cluster: job.cluster, job: job.kind, pid: job.child.pid }, 'forwarding SIGTERM to job');
      job.child.kill('SIGTERM');
    }
    const all = Promise.all([...this.running.values()].map((j) => j.done));
    const timer = setTimeout(() => {
      for (const job of this.running.values()) {
        this.log.error({ cluster: job.cluster, job: job.kind, pid: job.child.pid }, 'job did not stop in time: killing it');
        job.child.kill('SIGKILL');
      }
    }, timeoutMs);
    await all;
    clearTimeout(timer);
    await this.metrics?.close();
    this.state.stoppedAt = new Date().toISOString();
    await this.saveState();
    this.log.info({}, 'strata agent stopped');
    this.stopped();
  }

  private async reload(): Promise<void> {
    if (this.stopping) return;
    let next: LoadedConfig;
    try {
      next = await loadConfig(this.configFile);
      validateSchedules(next.config);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'configuration reload failed; keeping the running configuration');
      return;
    }
    await this.unschedule();
    this.loaded = next;
    // Waiting runs of jobs the new config no longer schedules are dropped.
    for (const [cluster, queue] of this.pending) {
      const sched = next.config.clusters[cluster]?.schedule;
      this.pending.set(
        cluster,
        queue.filter((k) => sched?.[k] !== undefined),
      );
    }
    await this.openRepos();
    this.schedule();
    await this.metrics?.close();
    await this.startMetrics();
    await this.saveState();
    this.log.info({ clusters: Object.keys(next.config.clusters) }, 'configuration reloaded');
  }

  private async openRepos(): Promise<void> {
    const repos = new Map<string, Repo>();
    const repo = await openRepository(this.loaded.config, this.loaded.path, this.loaded.dir, undefined, this.log);
    for (const name of Object.keys(this.loaded.config.clusters)) repos.set(name, repo);
    this.repos = repos;
  }

  private async startMetrics(): Promise<void> {
    const listen = this.loaded.config.agent.metrics?.listen;
    if (!listen) {
      this.metrics = undefined;
      return;
    }
    this.metrics = new MetricsServer(
      () => ({ state: this.state, config: this.loaded.config, repos: this.repos, running: this.runningJobs() }),
      this.log,
    );
    const address = await this.metrics.listen(listen);
    this.log.info({ address }, 'metrics listening');
  }

  private runningJobs(): { cluster: string; kind: JobKind }[] {
    return [...this.running.values()].map((j) => ({ cluster: j.cluster, kind: j.kind }));
  }

  private clusterState(name: string): ClusterState {
    return (this.state.clusters[name] ??= emptyClusterState());
  }

  private schedule(): void {
    const names = new Set(Object.keys(this.loaded.config.clusters));
    for (const name of Object.keys(this.state.clusters)) if (!names.has(name)) delete this.state.clusters[name];
    for (const [cluster, c] of Object.entries(this.loaded.config.clusters)) {
      const cs = this.clusterState(cluster);
      for (const kind of JOB_KINDS) {
        const expr = c.schedule[kind];
        if (!expr) {
          delete cs.jobs[kind];
          continue;
        }
        const task = cron.schedule(expr, () => this.runJob(cluster, kind), {
          name: `${cluster}:${kind}`,
          noOverlap: true,
          logger: cronLogger(this.log),
        });
        this.tasks.push(task);
        const js = (cs.jobs[kind] ??= { schedule: expr, nextRun: null, runs: emptyRuns() });
        js.schedule = expr;
        js.nextRun = task.getNextRun()?.toISOString() ?? null;
        this.log.info({ cluster, job: kind, schedule: expr, nextRun: js.nextRun }, 'scheduled');
      }
    }
  }

  private async unschedule(): Promise<void> {
    const tasks = this.tasks;
    this.tasks = [];
    for (const t of tasks) await t.destroy();
  }

  private refreshNextRuns(): void {
    for (const t of this.tasks) {
      const [cluster, kind] = (t.name ?? '').split(':') as [string, JobKind];
      const js = this.state.clusters[cluster]?.jobs[kind];
      if (js) js.nextRun = t.getNextRun()?.toISOString() ?? null;
    }
  }

  /** One scheduled run: skipped when another job holds the cluster, else a child strata process. */
  private async runJob(cluster: string, kind: JobKind): Promise<void> {
    if (this.stopping) return;
    const cs = this.clusterState(cluster);
    const js = cs.jobs[kind];
    if (!js) return;
    const busy = this.running.get(cluster);
    if (busy) {
      // A run that finds the cluster busy waits for it, once: a frequent job must not starve a rarer one.
      const queue = this.pending.get(cluster) ?? [];
      if (busy.kind === kind || queue.includes(kind)) {
        const why = busy.kind === kind ? 'the previous run is still going' : `already waiting while "${busy.kind}" runs`;
        this.log.warn({ cluster, job: kind, running: busy.kind }, `skipped: ${why}`);
        this.record(cluster, kind, new Date(), 'skipped', null, undefined, why);
        await this.saveState();
        return;
      }
      queue.push(kind);
      this.pending.set(cluster, queue);
      this.log.info({ cluster, job: kind, running: busy.kind }, 'waiting: another job is running on this cluster');
      return;
    }
    const startedAt = new Date();
    const opts = this.loaded.config.agent;
    const args = [
      ...nodeFlags(),
      BIN,
      ...jobArgs(kind, { startFast: opts.startFast }),
      '--config',
      this.loaded.path,
      '--cluster',
      cluster,
      '--log-level',
      opts.jobLogLevel,
      '--json',
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    const stdout: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => stdout.push(b));
    readline.createInterface({ input: child.stderr }).on('line', (line) => this.forwardJobLog(cluster, kind, child.pid, line));
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    this.running.set(cluster, { cluster, kind, child, done });
    cs.running = { job: kind, pid: child.pid ?? -1, startedAt: startedAt.toISOString() };
    this.refreshNextRuns();
    await this.saveState();
    this.log.info({ cluster, job: kind, pid: child.pid }, 'job started');
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('error', (err) => {
        this.log.error({ cluster, job: kind, err: err.message }, 'job could not start');
        resolve({ code: null, signal: null });
      });
      child.on('close', (c, s) => resolve({ code: c, signal: s }));
    });
    const parsed = parseJson(Buffer.concat(stdout).toString('utf8'));
    let outcome: JobOutcome;
    let message: string | undefined;
    if (code === 0) outcome = 'succeeded';
    else if (code === EXIT_LOCKED) {
      outcome = 'skipped';
      message = parsed?.message;
    } else if (this.stopping || signal === 'SIGTERM' || code === 10) {
      outcome = 'interrupted';
      message = parsed?.message ?? (signal ? `stopped by ${signal}` : undefined);
    } else {
      outcome = 'failed';
      message = parsed?.message ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
    }
    if (kind === 'restoreTest' && parsed?.result) {
      const r = parsed.result as { passed?: boolean; label?: string; rtoSeconds?: number; rpoSeconds?: number; error?: string };
      if (typeof r.passed === 'boolean') {
        cs.lastRehearsal = {
          finishedAt: new Date().toISOString(),
          passed: r.passed,
          label: r.label,
          rtoSeconds: r.rtoSeconds,
          rpoSeconds: r.rpoSeconds,
          error: r.error,
        };
        if (!r.passed) message = r.error;
      }
    }
    if (kind === 'check' && parsed?.result) {
      const r = parsed.result as CheckReport;
      if (typeof r.rule321 === 'boolean') {
        cs.lastCheck = checkRecord(r);
        if (!r.ok) message = r.problems.join('; ');
      }
    }
    if (outcome === 'succeeded' && (kind === 'full' || kind === 'incr' || kind === 'diff') && parsed?.result) {
      const r = parsed.result as { label: string; type: 'full' | 'incr' | 'diff'; bytes: number; repoBytes: number; durationMs: number };
      cs.lastBackup[r.type] = {
        label: r.label,
        finishedAt: new Date().toISOString(),
        bytes: r.bytes,
        repoBytes: r.repoBytes,
        durationSeconds: r.durationMs / 1000,
      };
    }
    delete cs.running;
    this.running.delete(cluster);
    this.record(cluster, kind, startedAt, outcome, code, signal ?? undefined, message);
    this.refreshNextRuns();
    await this.saveState();
    const level = outcome === 'failed' ? 'error' : outcome === 'succeeded' ? 'info' : 'warn';
    this.log[level]({ cluster, job: kind, outcome, exitCode: code, signal, message }, 'job finished');
    resolveDone();
    const nextKind = this.pending.get(cluster)?.shift();
    if (nextKind && !this.stopping) void this.runJob(cluster, nextKind);
  }

  private record(
    cluster: string,
    kind: JobKind,
    startedAt: Date,
    outcome: JobOutcome,
    exitCode: number | null,
    signal: string | undefined,
    message: string | undefined,
  ): void {
    const js = this.clusterState(cluster).jobs[kind];
    if (!js) return;
    const finishedAt = new Date();
    js.runs[outcome]++;
    js.last = {
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
      outcome,
      exitCode,
      ...(signal ? { signal } : {}),
      ...(message ? { message } : {}),
    };
  }

  /** Job logs are pino JSON lines: passed on with the job's name; other lines are wrapped. */
  private forwardJobLog(cluster: string, kind: JobKind, pid: number | undefined, line: string): void {
    if (!line.trim()) return;
    const obj = parseJson(line);
    if (obj && typeof obj.level === 'number') {
      process.stdout.write(`${JSON.stringify({ ...obj, cluster, job: kind, jobPid: pid })}\n`);
      return;
    }
    this.log.warn({ cluster, job: kind, jobPid: pid, stderr: line }, 'job output');
  }

  private async saveState(): Promise<void> {
    this.state.updatedAt = new Date().toISOString();
    const snapshot = structuredClone(this.state);
    // Serialised: an older snapshot never overwrites a newer one.
    this.writing = this.writing
      .then(() => writeAgentState(this.stateDir, snapshot))
      .catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'could not write the job-state file'));
    await this.writing;
  }
}

function parseJson(text: string): (Record<string, unknown> & { message?: string; result?: unknown }) | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown> & { message?: string }) : undefined;
  } catch {
    return undefined;
  }
}

/** Cron expressions are checked when the config is loaded, naming the key. */
export function validateSchedules(config: StrataConfig): void {
  const bad: string[] = [];
  for (const [cluster, c] of Object.entries(config.clusters)) {
    for (const kind of JOB_KINDS) {
      const expr = c.schedule[kind];
      if (expr === undefined) continue;
      const v = cron.validateDetailed(expr);
      if (!v.valid)
        bad.push(
          `  clusters.${cluster}.schedule.${kind}: "${expr}" is not a cron expression (${v.errors.map((e) => e.message).join('; ')})`,
        );
    }
  }
  if (bad.length) {
    throw new StrataError('ConfigInvalid', `invalid schedule:\n${bad.join('\n')}`, {
      hint: 'use cron syntax: minute hour day-of-month month day-of-week, with an optional leading seconds field',
    });
  }
}

function cronLogger(log: PinoLogger) {
  return {
    info: (m: string) => log.debug({ source: 'node-cron' }, m),
    warn: (m: string) => log.warn({ source: 'node-cron' }, m),
    error: (m: string | Error) => log.error({ source: 'node-cron' }, String(m)),
    debug: (m: string | Error) => log.debug({ source: 'node-cron' }, String(m)),
  };
}

/** What the agent keeps of a check report (for `status` and metrics). */
export function checkRecord(r: CheckReport): CheckRecord {
  return {
    finishedAt: new Date().toISOString(),
    ok: r.ok,
    rule321: r.rule321,
    copies: r.copies,
    mediaKinds: r.mediaKinds.length,
    offsiteCopies: r.offsiteCopies,
    repositories: r.repositories.map((c) => ({
      repo: c.repo,
      reachable: c.reachable,
      level: c.level,
      lagBackups: c.lag.backups,
      lagWalFiles: c.lag.walFiles,
      queued: c.queued,
    })),
  };
}
