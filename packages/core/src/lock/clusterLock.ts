import { processStartTime } from '../os/processStart.js';
import * as fs from 'node:fs/promises';
import { readFileSync, unlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StrataError } from '../errors/index.js';
import { noopLogger, type Logger } from '../logger.js';

/** What a lock file holds: enough to tell a live holder from a crashed one, and to name it. */
export interface LockHolder {
  pid: number;
  /** The holder's process start time (clock ticks since boot, /proc/<pid>/stat field 22): guards against pid reuse. */
  processStart: string | null;
  hostname: string;
  job: string;
  acquiredAt: string;
}

export interface ClusterLock {
  readonly file: string;
  readonly holder: LockHolder;
  release(): Promise<void>;
  /** For exit paths where nothing async may run (signal handlers). */
  releaseSync(): void;
}

export const DEFAULT_STATE_DIR = '/var/lib/strata/state';

/**
 * The state directory: the configured one; else /var/lib/strata/state when this user can write
 * there; else ~/.local/state/strata (a non-root user with no packaged state directory).
 */
export async function resolveStateDir(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const explicit = configured ?? env.STRATA_STATE_DIR;
  if (explicit) {
    await ensureDir(explicit);
    return path.resolve(explicit);
  }
  try {
    await ensureDir(DEFAULT_STATE_DIR);
    await fs.access(DEFAULT_STATE_DIR, fs.constants.W_OK);
    return DEFAULT_STATE_DIR;
  } catch {
    const fallback = path.join(os.homedir(), '.local', 'state', 'strata');
    await ensureDir(fallback);
    return fallback;
  }
}

async function ensureDir(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o750 });
  } catch (err) {
    throw new StrataError('PermissionDenied', `cannot create the state directory ${dir}: ${(err as Error).message}`, {
      cause: err,
      hint: 'create it for the user strata runs as, or set stateDir in the config',
    });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A killed process nobody has reaped yet (a zombie: state Z) still answers signal 0.
  return processState(pid) !== 'Z';
}

function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** A holder is stale when it ran on this host and its process is gone (or the pid now belongs to another process). */
export function isStale(h: LockHolder): boolean {
  if (h.hostname !== os.hostname()) return false;
  if (!isAlive(h.pid)) return true;
  const start = processStartTime(h.pid);
  return h.processStart !== null && start !== undefined && start !== h.processStart;
}

export function describeHolder(h: LockHolder): string {
  return `"${h.job}" (pid ${h.pid} on ${h.hostname}, since ${h.acquiredAt})`;
}

export function lockFile(stateDir: string, cluster: string): string {
  return path.join(stateDir, `${cluster}.lock`);
}

export async function readLock(file: string): Promise<LockHolder | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as LockHolder;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof SyntaxError)
      return { pid: -1, processStart: null, hostname: os.hostname(), job: 'unknown (unreadable lock file)', acquiredAt: '?' };
    throw err;
  }
}

/**
 * Takes the cluster's lock: one job per cluster at a time (backup, expire, verify, restore-test).
 * The file is created exclusively; a lock left by a crashed process on this host is taken over
 * under a short-lived takeover directory, so two processes cannot both replace it.
 */
export async function acquireClusterLock(
  stateDir: string,
  cluster: string,
  job: string,
  logger: Logger = noopLogger,
): Promise<ClusterLock> {
  const file = lockFile(stateDir, cluster);
  const holder: LockHolder = {
    pid: process.pid,
    processStart: processStartTime(process.pid) ?? null,
    hostname: os.hostname(),
    job,
    acquiredAt: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const fh = await fs.open(file, 'wx', 0o640);
      try {
        await fh.writeFile(JSON.stringify(holder));
        await fh.sync();
      } finally {
        await fh.close();
      }
      return makeLock(file, holder);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StrataError('PermissionDenied', `cannot create lock file ${file}: ${(err as Error).message}`, {
          cause: err,
          hint: 'make the state directory writable by the user strata runs as, or set stateDir in the config',
        });
      }
    }
    const current = await readLock(file);
    if (!current) continue;
    if (!isStale(current)) {
      throw new StrataError('Precondition', `cluster "${cluster}" is locked by ${describeHolder(current)}`, {
        context: { lock: file, pid: current.pid, job: current.job },
        hint: 'wait for that job to finish; a lock whose process is gone is cleared automatically',
      });
    }
    await takeOver(file, current, logger);
  }
  throw new StrataError('Precondition', `could not take the lock ${file}: it keeps changing hands`);
}

async function takeOver(file: string, stale: LockHolder, logger: Logger): Promise<void> {
  const guard = `${file}.takeover`;
  try {
    await fs.mkdir(guard);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process is taking over; a guard left by a crash mid-takeover expires after 30 s.
    const st = await fs.stat(guard).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 30_000) await fs.rmdir(guard).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    return;
  }
  try {
    // Re-read under the guard: only the very lock judged stale is removed.
    const again = await readLock(file);
    if (again && JSON.stringify(again) === JSON.stringify(stale)) {
      await fs.unlink(file);
      logger.warn(
        { lock: file, stalePid: stale.pid, staleJob: stale.job, since: stale.acquiredAt },
        'cleared a stale lock left by a process that is gone',
      );
    }
  } finally {
    await fs.rmdir(guard).catch(() => undefined);
  }
}

function makeLock(file: string, holder: LockHolder): ClusterLock {
  let released = false;
  const ours = async () => {
    const now = await readLock(file).catch(() => undefined);
    return now?.pid === holder.pid && now.acquiredAt === holder.acquiredAt;
  };
  return {
    file,
    holder,
    async release() {
      if (released) return;
      released = true;
      if (await ours()) await fs.unlink(file).catch(() => undefined);
    },
    releaseSync() {
      if (released) return;
      released = true;
      try {
        const now = JSON.parse(readFileSync(file, 'utf8')) as LockHolder;
        if (now.pid === holder.pid && now.acquiredAt === holder.acquiredAt) unlinkSync(file);
      } catch {
        // Already gone or unreadable: nothing of ours to remove.
      }
    },
  };
}
