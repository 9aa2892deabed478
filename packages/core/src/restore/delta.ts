import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { StrataError } from '../errors/index.js';
import type { ManifestFile } from '../manifest/types.js';
import { PAGE_HASH_BYTES, hashPages, pageCount } from '../blocks/pageHash.js';
import { FrameReader, hashFile, restoreFile, restorePages, setMetadata } from './fileRestorer.js';
import type { BlockPool } from '../pipeline/BlockPool.js';
import type { FileSyncer } from './FileSyncer.js';
import { ownSlice } from '../pipeline/blockJobs.js';

export interface DeltaOptions {
  chown: boolean;
  /** Trust size and mtime: a file whose both match the manifest is kept unread. */
  force: boolean;
  /** Makes each file written or patched durable (without: left to the caller). */
  syncer?: FileSyncer;
}

/**
 * Brings one existing file to the manifest's content: pages whose digest differs (or that lie
 * past the old end) are fetched and written, the rest kept; the file is cut to size and its
 * sha256 checked. A missing file, or one that is not a regular file, is restored whole.
 * Returns how it went.
 */
export async function deltaRestoreFile(
  file: ManifestFile,
  dest: string,
  reader: FrameReader,
  opts: DeltaOptions,
): Promise<'kept' | 'patched' | 'restored'> {
  const st = await fs.lstat(dest).catch(() => undefined);
  if (!st?.isFile()) {
    if (st) await fs.rm(dest, { recursive: true, force: true });
    await restoreFile(file, dest, reader, opts);
    return 'restored';
  }
  const size = file.size ?? 0;
  // A kept file whose mode, owner and mtime already match needs no system call more.
  const keep = async () => {
    if (!metadataMatches(st, file, opts)) await setMetadata(dest, file, opts);
    return 'kept' as const;
  };
  if (opts.force && st.size === size && Math.floor(st.mtimeMs) === file.mtime) return keep();
  if (!file.blockMap) {
    // One frame or empty: compare the whole file, rewrite it if it differs.
    if (st.size === size && (await sha256Of(dest, size, reader.pool)) === file.sha256) return keep();
    await fs.rm(dest);
    await restoreFile(file, dest, reader, opts);
    return 'restored';
  }
  const map = await reader.blockMap(file.blockMap, file.path);
  const pages = pageCount(size, map.pageSize);
  const expected = Buffer.from(map.hashes, 'base64');
  const comparable = Math.min(st.size, size);
  const { differ, same, sha256 } = reader.pool
    ? await comparePagesInPool(dest, comparable, size, map.pageSize, expected, reader.pool)
    : await comparePages(dest, comparable, size, map.pageSize, expected);
  const patched = same < pages || st.size !== size;
  if (patched) {
    const handle = await fs.open(dest, 'r+');
    try {
      if (st.size !== size) await handle.truncate(size);
      if (same < pages) await restorePages(file, size, handle, reader, differ);
    } finally {
      await handle.close();
    }
  }
  // Unchanged and whole: the compare pass already hashed every byte, in order.
  const digest = !patched && sha256 !== undefined ? sha256 : await sha256Of(dest, size, reader.pool);
  if (digest !== file.sha256) {
    throw new StrataError('Integrity', `${file.path}: after delta restore the file does not match the manifest's checksum`, {
      hint: 'run a restore without --delta into an empty directory',
    });
  }
  if (!patched) return keep();
  await setMetadata(dest, file, opts);
  await opts.syncer?.syncPath(dest, file.path);
  return 'patched';
}

function metadataMatches(st: Stats, file: ManifestFile, opts: DeltaOptions): boolean {
  return (
    (st.mode & 0o7777) === file.mode &&
    Math.floor(st.mtimeMs) === file.mtime &&
    (!opts.chown || (st.uid === file.uid && st.gid === file.gid))
  );
}

interface Comparison {
  /** 1 for each page to fetch. */
  differ: Uint8Array;
  same: number;
  /** sha256 of the bytes compared, when they were hashed in order and none differed. */
  sha256?: string;
}

/** Digests the existing file's pages on this thread and marks those that differ from `expected`. */
async function comparePages(dest: string, comparable: number, size: number, pageSize: number, expected: Buffer): Promise<Comparison> {
  const pages = pageCount(size, pageSize);
  const differ = new Uint8Array(pages).fill(1);
  const buf = Buffer.allocUnsafe(1024 * 1024);
  const digest = Buffer.alloc(PAGE_HASH_BYTES);
  let same = 0;
  const handle = await fs.open(dest, 'r');
  try {
    for (let pos = 0; pos < comparable;) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, comparable - pos), pos);
      if (bytesRead === 0) break;
      for (let off = 0; off < bytesRead; off += pageSize) {
        const page = (pos + off) / pageSize;
        const len = Math.min(pageSize, size - page * pageSize);
        if (off + len > bytesRead) break; // a page cut short by the old size: fetch it
        hashPages(buf.subarray(off, off + len), pageSize, digest, 0);
        if (digest.equals(expected.subarray(page * PAGE_HASH_BYTES, (page + 1) * PAGE_HASH_BYTES))) {
          differ[page] = 0;
          same++;
        }
      }
      pos += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return { differ, same };
}

/**
 * The same in a block worker, which reads the whole file once, in order, and also computes its
 * sha256 (until a page differs): nothing per byte on this thread, which schedules the other files.
 */
async function comparePagesInPool(
  dest: string,
  comparable: number,
  size: number,
  pageSize: number,
  expected: Buffer,
  pool: BlockPool,
): Promise<Comparison> {
  const pages = pageCount(size, pageSize);
  const differ = new Uint8Array(pages).fill(1);
  const r = await pool.run({
    op: 'digestFile',
    path: dest,
    length: comparable,
    expected: { hashes: ownSlice(expected, 0, expected.length), size },
    sha256: true,
  });
  if (r.ioError) throw Object.assign(new Error(`cannot read ${dest}: ${r.ioError.message}`), { code: r.ioError.code });
  const read = pageCount(r.bytes, pageSize);
  for (let page = 0; page < read; page++) differ[page] = 0;
  for (const page of r.changed ?? []) differ[page] = 1;
  const same = read - (r.changed?.length ?? 0);
  return { differ, same, ...(r.sha256 !== undefined && r.bytes === size ? { sha256: r.sha256 } : {}) };
}

/** sha256 of the first `size` bytes of `file`: in a block worker when there is a pool. */
async function sha256Of(file: string, size: number, pool: BlockPool | undefined): Promise<string> {
  if (pool) {
    const r = await pool.run({ op: 'digestFile', path: file, length: size, sha256: true });
    if (r.ioError) throw Object.assign(new Error(`cannot read ${file}: ${r.ioError.message}`), { code: r.ioError.code });
    return r.sha256!;
  }
  const handle = await fs.open(file, 'r');
  try {
    const sha = createHash('sha256');
    await hashFile(handle, size, sha);
    return sha.digest('hex');
  } finally {
    await handle.close();
  }
}

/**
 * Removes everything under PGDATA (and tablespace locations reached through the manifest's
 * links) that the manifest does not list — including old WAL in pg_wal, which must not be
 * replayed into the restored cluster. Returns the relative paths removed.
 */
export async function removeStrays(
  pgdata: string,
  files: ManifestFile[],
  linkTarget: (f: ManifestFile) => string | undefined,
): Promise<string[]> {
  const listed = new Map(files.map((f) => [f.path, f]));
  const removed: string[] = [];
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const name of (await fs.readdir(abs)).sort()) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const childAbs = path.join(abs, name);
      const want = listed.get(childRel);
      const st = await fs.lstat(childAbs);
      const kind = st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : 'file';
      const wrongLink = kind === 'link' && want?.type === 'link' && linkTarget(want) !== (await fs.readlink(childAbs));
      if (!want || want.type !== kind || wrongLink) {
        await fs.rm(childAbs, { recursive: true, force: true });
        removed.push(childRel);
        continue;
      }
      if (kind === 'dir') await walk(childAbs, childRel);
      else if (kind === 'link' && rel === 'pg_tblspc') {
        // A tablespace: its contents are part of the data.
        if ((await fs.stat(childAbs).catch(() => undefined))?.isDirectory()) await walk(childAbs, childRel);
      }
    }
  };
  await walk(pgdata, '');
  return removed;
}

/** Refuses a data directory whose postmaster.pid names a live process. */
export async function assertNotRunning(pgdata: string): Promise<void> {
  const pidFile = path.join(pgdata, 'postmaster.pid');
  const text = await fs.readFile(pidFile, 'utf8').catch(() => undefined);
  if (text === undefined) return;
  const pid = Number(text.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return;
  }
  throw new StrataError('Precondition', `PostgreSQL is running on ${pgdata} (postmaster.pid names process ${pid})`, {
    hint: 'stop the cluster first (pg_ctl stop); delta restore rewrites its files in place',
  });
}
