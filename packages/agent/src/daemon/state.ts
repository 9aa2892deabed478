import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export const JOB_KINDS = ['full', 'incr', 'diff', 'expire', 'verify', 'restoreTest', 'replicate', 'check'] as const;
export type JobKind = (typeof JOB_KINDS)[number];
export type JobOutcome = 'succeeded' | 'failed' | 'skipped' | 'interrupted';

export interface JobRecord {
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  outcome: JobOutcome;
  exitCode: number | null;
  signal?: string;
  /** The error or skip reason, as the job reported it. */
  message?: string;
}

export interface JobState {
  schedule: string;
  nextRun: string | null;
  last?: JobRecord;
  runs: Record<JobOutcome, number>;
}

export interface BackupRecord {
  label: string;
  finishedAt: string;
  /** Bytes of the data directory the backup covers, and bytes it stored. */
  bytes: number;
  repoBytes: number;
  durationSeconds: number;
}

export interface RehearsalRecord {
  finishedAt: string;
  passed: boolean;
  label?: string;
  rtoSeconds?: number;
  rpoSeconds?: number;
  error?: string;
}

/** The newest scheduled `strata check` (no WAL switch): the 3-2-1 verdict and each copy's lag. */
export interface CheckRecord {
  finishedAt: string;
  ok: boolean;
  rule321: boolean;
  copies: number;
  mediaKinds: number;
  offsiteCopies: number;
  repositories: { repo: string; reachable: boolean; level: boolean; lagBackups: number; lagWalFiles: number; queued: number }[];
}

export interface ClusterState {
  jobs: Partial<Record<JobKind, JobState>>;
  running?: { job: JobKind; pid: number; startedAt: string };
  lastBackup: Partial<Record<'full' | 'diff' | 'incr', BackupRecord>>;
  lastRehearsal?: RehearsalRecord;
  lastCheck?: CheckRecord;
}

/** The agent's job-state file (`<stateDir>/agent.json`): what `strata status` shows. */
export interface AgentState {
  format: 1;
  pid: number;
  hostname: string;
  config: string;
  startedAt: string;
  updatedAt: string;
  /** Set when the agent stopped cleanly. */
  stoppedAt?: string;
  clusters: Record<string, ClusterState>;
}

export function stateFile(stateDir: string): string {
  return path.join(stateDir, 'agent.json');
}

export async function readAgentState(stateDir: string): Promise<AgentState | undefined> {
  try {
    return JSON.parse(await fs.readFile(stateFile(stateDir), 'utf8')) as AgentState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Written whole to a temporary file and renamed over: readers never see half a file. */
export async function writeAgentState(stateDir: string, state: AgentState): Promise<void> {
  const file = stateFile(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o640 });
  await fs.rename(tmp, file);
}

export function emptyClusterState(): ClusterState {
  return { jobs: {}, lastBackup: {} };
}

export function emptyRuns(): Record<JobOutcome, number> {
  return { succeeded: 0, failed: 0, skipped: 0, interrupted: 0 };
}
