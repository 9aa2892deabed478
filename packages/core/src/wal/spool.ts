// Synchronous calls through lightFs: spool files are tiny, and loading node:fs/promises (or
// importing node:fs) costs an async archive-push more than everything else it does.
import { processStartTime } from '../os/processStart.js';
import { lightFs as fs } from '../lightFs.js';
import * as path from 'node:path';
import { ERROR_CODES, StrataError, toStrataError, type ErrorCode } from '../errors/index.js';
import type { ArchivePushResult } from './archive.js';

/**
 * The durable spool of asynchronous archiving (docs/decisions.md): one directory per cluster and
 * repository holding a marker per WAL file the background pusher has handled, and the pusher's
 * lock. `<wal>.ok` exists only once the file is stored in the repository (it is written after
 * archivePush resolved, fsynced with its directory); `<wal>.error` says why the last attempt failed.
 * PostgreSQL is told "done" only by archive-push finding an `.ok` marker for the very file it
 * passed (same device, inode, size and mtime), so a crash anywhere re-pushes a file (idempotent)
 * and never acknowledges one that is not stored.
 */
export interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

export interface StoredMarker {
  /**
   * The stored file as `stat -L -c '%d %i %s %.9Y'` prints it (device, inode, size, mtime to the
   * nanosecond), taken before the file was read. Written first in the marker's one line, so
   * bin/strata-archive-push (sh) can compare it with the file PostgreSQL passes without Node.
   */
  id?: string;
  result: ArchivePushResult;
  source: FileIdentity;
}

export interface ErrorMarker {
  code: ErrorCode;
  message: string;
  hint?: string;
  context: Record<string, string | number | boolean | undefined>;
}

export type SpoolState = { kind: 'stored'; result: ArchivePushResult } | { kind: 'error'; error: StrataError } | undefined;

const OK = '.ok';
const ERROR = '.error';
const LOCK = 'pusher.lock';

export function spoolDir(spoolPath: string, cluster: string, repo: string): string {
  return path.join(spoolPath, cluster, repo, 'archive-push');
}

export async function fileIdentity(file: string): Promise<FileIdentity> {
  const s = fs.statSync(file);
  return { dev: s.dev, ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
}

/** `stat -L -c '%d %i %s %.9Y' FILE` of GNU coreutils, from Node. */
export function shIdentity(file: string): string {
  const s = fs.statSync(file, { bigint: true });
  const ns = s.mtimeNs;
  const sec = ns / 1_000_000_000n;
  const frac = (ns - sec * 1_000_000_000n).toString().padStart(9, '0');
  return `${s.dev} ${s.ino} ${s.size} ${sec}.${frac}`;
}

function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

export class ArchiveSpool {
  constructor(readonly dir: string) {}

  async create(): Promise<void> {
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new StrataError('PermissionDenied', `cannot create the archive spool ${this.dir}: ${(err as Error).message}`, {
        cause: err,
        hint: 'set archive.spoolPath to a local directory the user running PostgreSQL can write',
      });
    }
  }

  /** Markers present, by WAL name. One readdir, for the pusher's scan. */
  async markers(): Promise<{ stored: Set<string>; failed: Set<string> }> {
    const stored = new Set<string>();
    const failed = new Set<string>();
    for (const f of fs.readdirSync(this.dir)) {
      if (f.endsWith(OK)) stored.add(f.slice(0, -OK.length));
      else if (f.endsWith(ERROR)) failed.add(f.slice(0, -ERROR.length));
    }
    return { stored, failed };
  }

  /** Durable: the marker and its directory entry are on disk before this resolves. */
  async writeStored(walName: string, marker: StoredMarker): Promise<void> {
    // `id` first: the sh fast path matches the line's beginning.
    const { id, ...rest } = marker;
    await this.writeDurably(walName + OK, JSON.stringify(id === undefined ? rest : { id, ...rest }));
  }

  async writeError(walName: string, err: unknown): Promise<void> {
    const e = toStrataError(err);
    const marker: ErrorMarker = { code: e.code, message: e.message, hint: e.hint, context: e.context };
    // An error marker only makes archive-push fail sooner: it need not survive a crash.
    const tmp = path.join(this.dir, `${walName}${ERROR}.tmp-${process.pid}`);
    fs.writeFileSync(tmp, JSON.stringify(marker));
    fs.renameSync(tmp, path.join(this.dir, walName + ERROR));
  }

  async clearError(walName: string): Promise<void> {
    fs.rmSync(path.join(this.dir, walName + ERROR), { force: true });
  }

  /**
   * What archive-push tells PostgreSQL for `walPath`: stored, the last error (consumed, so the
   * next attempt retries), or nothing yet. A stored marker stays until the pusher sees PostgreSQL
   * has marked the file done (prune): removed any earlier, the pusher would store the file again
   * in the moment before PostgreSQL renames its .ready. A stored marker for another file of the
   * same name (a restored cluster reusing names) is stale: it is removed, never trusted.
   */
  async take(walPath: string): Promise<SpoolState> {
    const walName = path.basename(walPath);
    const ok = path.join(this.dir, walName + OK);
    const stored = await readJson<StoredMarker>(ok);
    if (stored) {
      if (sameFile(stored.source, await fileIdentity(walPath))) return { kind: 'stored', result: stored.result };
      fs.rmSync(ok, { force: true });
    }
    const errFile = path.join(this.dir, walName + ERROR);
    const failed = await readJson<ErrorMarker>(errFile);
    if (failed) {
      fs.rmSync(errFile, { force: true });
      const code = (ERROR_CODES as readonly string[]).includes(failed.code) ? failed.code : 'Internal';
      return { kind: 'error', error: new StrataError(code, failed.message, { hint: failed.hint, context: failed.context }) };
    }
    return undefined;
  }

  /** Removes the given markers of WAL files PostgreSQL no longer asks about (acknowledged or gone). */
  async prune(keep: ReadonlySet<string>, markers: { stored: ReadonlySet<string>; failed: ReadonlySet<string> }): Promise<void> {
    for (const [names, ext] of [
      [markers.stored, OK],
      [markers.failed, ERROR],
    ] as const) {
      for (const walName of names) if (!keep.has(walName)) fs.rmSync(path.join(this.dir, walName + ext), { force: true });
    }
  }

  /**
   * Asynchronous (only the pusher writes markers, and the client never loads node:fs/promises):
   * the fsyncs, as long as compressing a segment here, must not block the pusher's event loop,
   * which meanwhile hands the next files to its workers and collects their results.
   */
  private async writeDurably(name: string, text: string): Promise<void> {
    const fsp = await import('node:fs/promises');
    const tmp = path.join(this.dir, `${name}.tmp-${process.pid}`);
    const handle = await fsp.open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, path.join(this.dir, name));
    const dir = await fsp.open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /**
   * Takes the single-pusher lock for `pid`: true when that process holds it. A lock left by a process that
   * no longer exists (crash, kill -9) is taken over. Two pushers at once would only duplicate work
   * (pushes are idempotent), so the lock saves effort; it is not what keeps WAL safe.
   */
  async lock(pid = process.pid): Promise<boolean> {
    const file = path.join(this.dir, LOCK);
    const mine = lockText(pid);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.writeFileSync(file, mine, { flag: 'wx', mode: 0o600 });
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = this.holder();
      // An async archive-push takes the lock for the pusher it spawns, so it is already ours.
      if (holder !== undefined) return holder === pid;
      // Stale: replace it atomically, then check nobody else replaced it at the same moment.
      const tmp = `${file}.tmp-${pid}`;
      fs.writeFileSync(tmp, mine, { mode: 0o600 });
      fs.renameSync(tmp, file);
      if (readText(file) === mine) return true;
    }
    return false;
  }

  async unlock(pid = process.pid): Promise<void> {
    const file = path.join(this.dir, LOCK);
    if (readText(file) === lockText(pid)) fs.rmSync(file, { force: true });
  }

  /** The pid of the live process holding the lock, if any. */
  holder(): number | undefined {
    let text: string;
    try {
      text = fs.readFileSync(path.join(this.dir, LOCK), 'utf8');
    } catch {
      return undefined;
    }
    const [pidText, started] = text.split('\n');
    const pid = Number(pidText);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return processStartTime(pid) === started && started !== undefined ? pid : undefined;
  }
}

function lockText(pid: number): string {
  return `${pid}\n${processStartTime(pid) ?? ''}\n`;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    // Only a torn write of a marker that was never acknowledged: forget it, the push is repeated.
    fs.rmSync(file, { force: true });
    return undefined;
  }
}
