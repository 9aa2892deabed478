import { createHash, type Hash } from 'node:crypto';
import { readSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { StrataError, isStrataError } from '../errors/index.js';
import { keys } from '../repository/keys.js';
import type { Repo } from '../repository/Repo.js';
import type { Repository } from '../repository/Repository.js';
import type { BlockMapEntry, BlockMapRef, FrameRef, Manifest, ManifestFile } from '../manifest/types.js';
import { PAGE_HASH_BYTES, hashPages, pageCount } from '../blocks/pageHash.js';
import { BlockMapReader } from '../blocks/BlockMapReader.js';
import { pageOwners, pagesOf } from '../blocks/superBlocks.js';
import type { BlockPool } from '../pipeline/BlockPool.js';
import { Permits } from '../pipeline/Permits.js';
import { localHash, type HashThread, type StreamHash } from '../pipeline/HashThread.js';
import type { FileSyncer } from './FileSyncer.js';

/**
 * Read-ahead windows kept per restore (1 MiB each) that no announced frame still needs. Files
 * restored at once interleave their frames in packs, and a chain reads the full's and the
 * incrementals' packs side by side: with 8 kept, a scale-100 chain restore fetched 350-390 MiB for
 * 116 MiB of packs (windows evicted and fetched again); with 32, ~220-310 MiB.
 */
export const WINDOWS_KEPT = 32;
/**
 * Windows still needed by frames announced with `plan` stay cached beyond WINDOWS_KEPT, up to this
 * many in all: a file in progress keeps the windows its later frames read. LRU alone, at 32 windows,
 * evicted them while the other files restored at once went through theirs: 300 MiB fetched for a
 * 125 MiB chain at scale 100; with planned windows kept, each window was fetched once
 * (docs/performance.md).
 */
export const WINDOWS_MAX = 4 * WINDOWS_KEPT;

/** Reads frames and block maps of one backup chain, checking every checksum on the way. */
export class FrameReader {
  private readonly maps: BlockMapReader;
  bytesFetched = 0;
  /**
   * Full restore: fetch packs in aligned windows of this many bytes and serve the frames inside
   * from memory (frames of small files lie side by side), instead of one ranged read each. Off for
   * delta restore, which fetches only what differs.
   */
  readAhead = 0;
  private readonly windows = new Map<string, Promise<Buffer>>();
  /** Per window (`start\0key`): frames announced by `plan` that have not been read yet. */
  private readonly planned = new Map<string, number>();
  /** Windows kept that no planned frame needs (tests lower it). */
  windowsKept = WINDOWS_KEPT;
  /** Windows kept in all, needed or not. */
  windowsMax = WINDOWS_MAX;
  /** Frames in flight across all files (see Permits): never more than the pool's slots. */
  readonly inFlight: Permits;
  /**
   * Restore: a frame whose content checksum (zstd's) was verified while decompressing needs no
   * page digests — each restored file's sha256 is checked against the manifest too. Off: every
   * page's digest is compared.
   */
  trustFrameChecksums = false;

  constructor(
    private readonly repo: Repo,
    private readonly manifest: Manifest,
    /** Decompression and page digests in worker threads (optional: without it, on this thread). */
    readonly pool?: BlockPool,
  ) {
    this.maps = new BlockMapReader(repo, manifest.cluster, manifest.label);
    this.inFlight = new Permits(pool?.slots.layout.slots ?? 4);
  }

  /** Page size the pool digests with (0 without a pool). */
  get pageSize(): number {
    return this.pool?.opts.pageSize ?? 0;
  }

  packKey(ref: FrameRef): string {
    return keys.pack(this.manifest.cluster, ref.backup ?? this.manifest.label, ref.pack);
  }

  blockMap(ref: BlockMapRef, path: string): Promise<BlockMapEntry> {
    return this.maps.entry(ref, path);
  }

  /**
   * Fetches and decompresses one frame and hands it to `use`, with its page digests when a block
   * worker computed them; `expectedSize` guards against a frame from elsewhere. With a pool the
   * frame lives in a shared slot only while `use` runs.
   */
  async withFrame<T>(
    ref: FrameRef,
    expectedSize: number,
    what: string,
    use: (data: Buffer, digests: Buffer | undefined, checksummed: boolean) => Promise<T> | T,
  ): Promise<T> {
    const key = this.packKey(ref);
    // A copy that lacks the pack, cannot be reached or fails a check: the frame comes from the next
    // copy. `use` may run again then; it writes pages by position, so a rerun overwrites them.
    return this.repo.readFrom(key, (copy) => this.frameFrom(copy, key, ref, expectedSize, what, use));
  }

  private async frameFrom<T>(
    copy: Repository,
    key: string,
    ref: FrameRef,
    expectedSize: number,
    what: string,
    use: (data: Buffer, digests: Buffer | undefined, checksummed: boolean) => Promise<T> | T,
  ): Promise<T> {
    const raw = await this.fetch(copy, key, ref);
    if (raw.length !== ref.length)
      throw this.corrupt(key, ref, what, `object is shorter than expected (${raw.length} of ${ref.length} bytes)`, undefined, copy);
    const compressor = this.repo.compressor(this.manifest.options.compression);
    const pool = this.pool;
    const layout = pool?.slots.layout;
    if (pool && layout && compressor.parallel?.codec === pool.opts.codec && raw.length <= layout.outSize && expectedSize <= layout.inSize) {
      const slot = await pool.acquire();
      try {
        raw.copy(slot.output);
        const r = await pool.run({ op: 'decompress', slot: slot.index, length: raw.length, digest: !this.trustFrameChecksums });
        if (r.corrupt) throw this.corrupt(key, ref, what, r.corrupt, undefined, copy);
        if (r.bytes !== expectedSize)
          throw this.corrupt(key, ref, what, `frame holds ${r.bytes} bytes, expected ${expectedSize}`, undefined, copy);
        return await use(slot.input.subarray(0, r.bytes), r.checksummed ? undefined : slot.hashes, r.checksummed === true);
      } finally {
        pool.release(slot);
      }
    }
    let data: Buffer;
    try {
      data = await compressor.decompress(raw);
    } catch (err) {
      if (isStrataError(err) && err.code === 'ConfigInvalid') throw err;
      throw this.corrupt(key, ref, what, 'frame does not decompress', err, copy);
    }
    if (data.length !== expectedSize)
      throw this.corrupt(key, ref, what, `frame holds ${data.length} bytes, expected ${expectedSize}`, undefined, copy);
    return use(data, undefined, false);
  }

  private async fetch(copy: Repository, key: string, ref: FrameRef): Promise<Buffer> {
    const chunk = this.readAhead;
    if (chunk <= 0) {
      const data = await copy.getBuffer(key, { range: { start: ref.offset, end: ref.offset + ref.length } });
      this.bytesFetched += data.length;
      return data;
    }
    // Aligned windows: every byte of a pack is fetched once while its window is cached, whichever
    // lane asks first and in whatever order the frames are asked for.
    const end = ref.offset + ref.length;
    const parts: Buffer[] = [];
    for (let start = Math.floor(ref.offset / chunk) * chunk; start < end; start += chunk) {
      const window = await this.window(copy, key, start, chunk);
      parts.push(window.subarray(Math.max(0, ref.offset - start), Math.max(0, end - start)));
      // A window cut short is the end of the object: the caller reports the frame short.
      if (window.length < chunk) break;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /**
   * Announces frames to be read (a file's, in the order they will be asked for): the windows they
   * lie in are kept until `done` is called for each of them. Only with read-ahead.
   */
  plan(refs: Iterable<FrameRef>): void {
    if (this.readAhead > 0) for (const ref of refs) this.eachWindow(ref, (id) => this.planned.set(id, (this.planned.get(id) ?? 0) + 1));
  }

  /** A planned frame was read (or will not be): its windows may go once nothing else needs them. */
  done(ref: FrameRef): void {
    if (this.readAhead <= 0) return;
    this.eachWindow(ref, (id) => {
      const left = (this.planned.get(id) ?? 0) - 1;
      if (left > 0) this.planned.set(id, left);
      else this.planned.delete(id);
    });
  }

  /** Windows some planned frame still needs (0 once every planned frame is done). */
  get plannedWindows(): number {
    return this.planned.size;
  }

  private eachWindow(ref: FrameRef, visit: (id: string) => void): void {
    const chunk = this.readAhead;
    const key = this.packKey(ref);
    const end = ref.offset + ref.length;
    for (let start = Math.floor(ref.offset / chunk) * chunk; start < end; start += chunk) visit(`${start}\0${key}`);
  }

  /**
   * One aligned window of a pack, from the cache or fetched once. The cache keeps windows planned
   * frames still need (up to windowsMax) and the most recently used windowsKept of the others.
   */
  private window(copy: Repository, key: string, start: number, chunk: number): Promise<Buffer> {
    // Per copy: a frame retried from another copy never comes from the failed copy's window.
    const id = `${start}\0${key}\0${copy.name}`;
    const cached = this.windows.get(id);
    if (cached) {
      this.windows.delete(id);
      this.windows.set(id, cached);
      return cached;
    }
    // A range past the end of the object returns what there is.
    const fetching = copy.getBuffer(key, { range: { start, end: start + chunk } }).then((data) => {
      this.bytesFetched += data.length;
      return data;
    });
    this.windows.set(id, fetching);
    fetching.catch(() => this.windows.delete(id));
    this.evict();
    return fetching;
  }

  /** Drops the least recently used windows no planned frame needs, then, past windowsMax, any. */
  private evict(): void {
    let unneeded = 0;
    for (const id of this.windows.keys()) if (!this.planned.has(id.slice(0, id.lastIndexOf('\0')))) unneeded++;
    for (const id of [...this.windows.keys()]) {
      if (unneeded <= this.windowsKept) break;
      if (this.planned.has(id.slice(0, id.lastIndexOf('\0')))) continue;
      this.windows.delete(id);
      unneeded--;
    }
    while (this.windows.size > this.windowsMax) this.windows.delete(this.windows.keys().next().value!);
  }

  corrupt(key: string, ref: FrameRef, what: string, why: string, cause?: unknown, copy: Repo = this.repo): StrataError {
    return new StrataError('Integrity', `object "${key}" in ${copy.describe()} is corrupt at offset ${ref.offset} (${what}): ${why}`, {
      cause,
      context: { key, repo: copy.name },
      hint: 'restore from another copy of the repository or an older backup; "strata info" lists them',
    });
  }
}

/**
 * Restores one regular file to `dest` (created exclusively), verifying each page's digest and the
 * whole file's sha256 before its metadata is set (through the open handle: no path lookups).
 *
 * File system calls stay asynchronous: in libuv's thread pool they run on the other core, while
 * this thread — the one that verifies, hashes and dispatches — is the restore's critical path
 * (docs/performance.md: creating a file costs ~0.5 ms of kernel time here).
 */
export async function restoreFile(file: ManifestFile, dest: string, reader: FrameReader, opts: RestoreFileOptions): Promise<number> {
  const handle = await fs.open(dest, 'wx+', 0o600);
  const size = file.size ?? 0;
  let handedOver = false;
  try {
    let written = 0;
    let digest: string | undefined;
    if (file.data) {
      const sha = createHash('sha256');
      written = await reader.withFrame(file.data, size, file.path, async (data) => {
        sha.update(data);
        await writeAll(handle, data, 0);
        return data.length;
      });
      digest = sha.digest('hex');
    } else if (file.blockMap) {
      const result = await restorePages(file, size, handle, reader, undefined, opts.syncer);
      written = result.written;
      digest = result.sha256;
    } else digest = createHash('sha256').digest('hex');
    if (written !== size) throw new StrataError('Integrity', `${file.path}: restored ${written} bytes, the manifest records ${size}`);
    if (file.sha256 && digest !== file.sha256) {
      throw new StrataError('Integrity', `${file.path}: checksum of the restored file does not match the manifest`, {
        hint: 'the repository is damaged; restore from another copy',
      });
    }
    await setMetadataOfHandle(handle, file, opts);
    if (opts.syncer) {
      handedOver = true;
      await opts.syncer.syncAndClose(handle, file.path);
    }
  } finally {
    if (!handedOver) await handle.close();
  }
  return size;
}

export interface RestoreFileOptions {
  chown: boolean;
  /** Makes the file durable once it is complete (without: left to the caller). */
  syncer?: FileSyncer;
}

/**
 * Writes every page from the super block that holds its current content, fetching each needed
 * super block exactly once and checking each page's digest. Several super blocks of the file are
 * fetched and decompressed at once (up to the reader's free permits); they are verified and
 * written one after another, in the order of the first page each holds.
 *
 * Without `only` every page goes through a StagedFile: written in file order in large writes, and
 * hashed (sha256) on the way. With `only` (delta restore) just those pages are written, each run
 * where it belongs, and no sha256 is computed.
 */
export async function restorePages(
  file: ManifestFile,
  size: number,
  handle: fs.FileHandle,
  reader: FrameReader,
  /** Delta restore: only these pages are written (and only their super blocks fetched). */
  only?: Uint8Array,
  /** Told how far a file restored whole is written, to start its writeback on the way. */
  syncer?: FileSyncer,
): Promise<{ written: number; sha256?: string }> {
  const map = await reader.blockMap(file.blockMap!, file.path);
  const { pageSize } = map;
  const pages = pageCount(size, pageSize);
  const expected = Buffer.from(map.hashes, 'base64');
  if (map.size !== size || expected.length !== pages * PAGE_HASH_BYTES) {
    throw new StrataError('Integrity', `block map entry for ${file.path} does not match its ${size} bytes`);
  }
  const owners = pageOwners(map.superBlocks, pages);
  const orphan = owners.indexOf(-1);
  if (orphan >= 0) throw new StrataError('Integrity', `block map entry for ${file.path} holds no copy of page ${orphan}`);
  const wanted = (page: number) => !only || only[page] === 1;
  // Large files are hashed by the pool's hash thread (small ones are not worth the messages).
  const hasher = size >= REMOTE_HASH_BYTES ? reader.pool?.hashThread() : undefined;
  const staged = only ? undefined : new StagedFile(handle, size, pageSize, pages, STAGING_BYTES, hasher);
  const digest = Buffer.alloc(PAGE_HASH_BYTES);
  let written = 0;

  /** Verifies and writes the pages `index` owns from its decompressed frame; returns the bytes written. */
  const writeFrame = async (index: number, data: Buffer, workerDigests: Buffer | undefined, checksummed: boolean): Promise<number> => {
    const sb = map.superBlocks[index]!;
    const framePages = pagesOf(sb);
    const digests = pageSize === reader.pageSize ? workerDigests : undefined;
    let run: { from: number; page: number; len: number } | undefined;
    let frameWritten = 0;
    const writes: Promise<void>[] = [];
    // Pages that follow each other in the frame and in the file go on as one run: one copy into the
    // staging window (or one write, for delta restore) instead of one per page.
    const flush = () => {
      if (!run) return;
      if (staged) staged.put(run.page, data, run.from, run.len);
      else writes.push(writeAll(handle, data.subarray(run.from, run.from + run.len), run.page * pageSize));
      run = undefined;
    };
    const pagesLoop = () => {
      for (let k = 0; k < framePages.length; k++) {
        const page = framePages[k]!;
        if (page >= pages || owners[page] !== index || !wanted(page)) continue;
        const from = k * pageSize;
        const len = Math.min(pageSize, size - page * pageSize);
        if (from + len > data.length) throw reader.corrupt(reader.packKey(sb), sb, file.path, `page ${page} is cut short`);
        // A worker digested the frame's pages; a short page in mid-frame cannot be (frames are whole pages but the file's last).
        // (Offsets into the digest buffers rather than subarrays: no garbage per page.)
        if (!checksummed) {
          const fromWorker = digests !== undefined && (len === pageSize || from + len === data.length);
          if (!fromWorker) hashPages(data.subarray(from, from + len), pageSize, digest, 0);
          const [got, at] = fromWorker ? [digests, k * PAGE_HASH_BYTES] : [digest, 0];
          if (expected.compare(got, at, at + PAGE_HASH_BYTES, page * PAGE_HASH_BYTES, (page + 1) * PAGE_HASH_BYTES) !== 0) {
            throw reader.corrupt(reader.packKey(sb), sb, file.path, `page ${page} does not match its digest`);
          }
        }
        frameWritten += len;
        if (run && run.from + run.len === from && run.page + run.len / pageSize === page) run.len += len;
        else {
          flush();
          run = { from, page, len };
        }
      }
    };
    try {
      pagesLoop();
    } catch (err) {
      // A damaged page: the writes already issued (verified pages) finish before the frame's
      // buffer is released, or a retry from another copy could be overwritten by them.
      await Promise.allSettled(writes);
      throw err;
    }
    flush();
    await settleAll(writes);
    if (staged) {
      await staged.flush();
      syncer?.progress(handle, staged.flushed, file.path);
    }
    return frameWritten;
  };

  // Super blocks in the order of the first page they hold; each waits for the one before it
  // (`turn`) to be written, so pages are verified, written and hashed in a fixed order.
  const order = [...new Set(Array.from(owners).filter((_, page) => wanted(page)))];
  const running: Promise<void>[] = [];
  let failure: { err: unknown } | undefined;
  let turn = Promise.resolve();
  // The windows these frames lie in stay cached until each frame is read (see FrameReader.plan).
  reader.plan(order.map((index) => map.superBlocks[index]!));
  for (const [at, index] of order.entries()) {
    await reader.inFlight.acquire();
    if (failure) {
      reader.inFlight.release();
      for (const rest of order.slice(at)) reader.done(map.superBlocks[rest]!);
      break;
    }
    const sb = map.superBlocks[index]!;
    const frameSize = sb.size ?? Math.min(sb.count * pageSize, size - sb.first * pageSize);
    const previous = turn;
    let done!: () => void;
    turn = new Promise((resolve) => (done = resolve));
    const task = (async () => {
      try {
        const n = await reader.withFrame(sb, frameSize, file.path, async (data, workerDigests, checksummed) => {
          await previous;
          return failure ? 0 : writeFrame(index, data, workerDigests, checksummed);
        });
        written += n;
      } catch (err) {
        failure ??= { err };
      } finally {
        done();
        reader.done(sb);
        reader.inFlight.release();
      }
    })();
    running.push(task);
  }
  await Promise.all(running);
  if (failure) {
    await staged?.settle();
    throw failure.err;
  }
  return { written, ...(staged ? { sha256: await staged.digest() } : {}) };
}

/**
 * Writes a file restored whole in file order through a staging window, computing its sha256 on
 * the way. Frames come in the order of the first page each holds, so once a frame is in, every page
 * before the next frame's first page is complete: that prefix is hashed and written in one call.
 * Pages arriving beyond the window (a chain's incremental frame reaching far ahead) are written at
 * once and read back for the hash when the prefix reaches them (page cache). Writing regions
 * instead of each frame's page runs matters for chains: an incremental's changed pages cut the full
 * backup's frames into short runs (25 k small writes for one relation file at pgbench scale 30).
 */
export class StagedFile {
  private readonly sha: StreamHash;
  private readonly buf: Buffer;
  private readonly windowPages: number;
  /** Per page: 0 not yet here, 1 in the staging window, 2 written to the file directly. */
  private readonly state: Uint8Array;
  private readonly direct: Promise<void>[] = [];
  /** First page not yet hashed and written (staging offset 0). */
  private base = 0;
  /** One past the highest page staged. */
  private top = 0;
  private readBack: Buffer | undefined;

  constructor(
    private readonly handle: fs.FileHandle,
    private readonly size: number,
    private readonly pageSize: number,
    private readonly pages: number,
    windowBytes = STAGING_BYTES,
    /** Hash on this thread (the default) or on the hash thread, from shared staging buffers. */
    private readonly hasher?: HashThread,
  ) {
    this.windowPages = Math.max(1, Math.min(pages, Math.floor(windowBytes / pageSize)));
    this.buf = this.buffer(Math.min(this.windowPages * pageSize, size));
    this.state = new Uint8Array(pages);
    this.sha = hasher ? hasher.open() : localHash();
  }

  /** Shared memory when the hash thread reads it (untouched pages of either are not resident). */
  private buffer(bytes: number): Buffer {
    return this.hasher ? Buffer.from(new SharedArrayBuffer(bytes)) : Buffer.allocUnsafe(bytes);
  }

  /** Bytes of the file's prefix written so far. */
  get flushed(): number {
    return Math.min(this.base * this.pageSize, this.size);
  }

  /**
   * Takes verified pages: `len` bytes of `data` at `from`, the content of the file's pages from
   * `page` on (whole pages, but for the file's last).
   */
  put(page: number, data: Buffer, from: number, len: number): void {
    const { pageSize, state } = this;
    // A frame read again from another copy after a failure: pages already written stay.
    if (page < this.base) {
      const skip = Math.min(this.base - page, Math.ceil(len / pageSize));
      page += skip;
      from += skip * pageSize;
      len -= skip * pageSize;
      if (len <= 0) return;
    }
    const inWindow = Math.min(Math.ceil(len / pageSize), this.base + this.windowPages - page);
    if (inWindow > 0) {
      const bytes = Math.min(len, inWindow * pageSize);
      data.copy(this.buf, (page - this.base) * pageSize, from, from + bytes);
      state.fill(1, page, page + inWindow);
      this.top = Math.max(this.top, page + inWindow);
      page += inWindow;
      from += bytes;
      len -= bytes;
    }
    // Beyond the window: written at once, each page once (a retried frame's are already there).
    while (len > 0) {
      while (len > 0 && state[page] === 2) {
        page++;
        from += pageSize;
        len -= pageSize;
      }
      let n = 0;
      while (n * pageSize < len && state[page + n] !== 2) n++;
      if (n === 0) break;
      const bytes = Math.min(len, n * pageSize);
      this.direct.push(writeAll(this.handle, Buffer.from(data.subarray(from, from + bytes)), page * pageSize));
      state.fill(2, page, page + n);
      page += n;
      from += bytes;
      len -= bytes;
    }
  }

  /** Hashes and writes the complete prefix once it is worth a write (with `all`, whatever is complete). */
  async flush(all = false): Promise<void> {
    const { pageSize, state } = this;
    let end = this.base;
    while (end < this.pages && state[end] !== 0) end++;
    const bytesTo = (page: number) => Math.min(page * pageSize, this.size);
    if (end === this.base || (!all && end < this.pages && bytesTo(end) - bytesTo(this.base) < FLUSH_BYTES)) return;
    const off = (page: number) => bytesTo(page) - bytesTo(this.base);
    for (let page = this.base; page < end;) {
      let runEnd = page + 1;
      while (runEnd < end && state[runEnd] === state[page]) runEnd++;
      if (state[page] === 1) {
        const chunk = this.buf.subarray(off(page), off(runEnd));
        // Hashed and written at once: both only read the window until they settle.
        await settleAll([Promise.resolve(this.sha.update(chunk)), writeAll(this.handle, chunk, bytesTo(page))]);
      } else {
        await settleAll(this.direct.splice(0));
        await this.hashFromFile(bytesTo(page), bytesTo(runEnd));
      }
      page = runEnd;
    }
    // Pages staged past the prefix move to the front of the window.
    if (this.top > end) this.buf.copy(this.buf, 0, off(end), off(this.top));
    this.base = end;
    this.top = Math.max(this.top, end);
  }

  /** The sha256, once every page is written; fails when a page never came. */
  async digest(): Promise<string> {
    await this.flush(true);
    await settleAll(this.direct.splice(0));
    if (this.base !== this.pages) {
      this.sha.drop();
      throw new StrataError('Integrity', `restored file is missing page ${this.base}`);
    }
    return this.sha.digest();
  }

  /** Settles writes still in flight (a failed restore must not leave writes behind its cleanup). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.direct.splice(0));
    this.sha.drop();
  }

  /**
   * Synchronous: pages just written (in the page cache), a few microseconds each, where a
   * thread-pool round trip costs ten times more.
   */
  private async hashFromFile(start: number, end: number): Promise<void> {
    this.readBack ??= this.buffer(Math.min(1024 * 1024, end - start));
    for (let pos = start; pos < end;) {
      const n = readSync(this.handle.fd, this.readBack, 0, Math.min(this.readBack.length, end - pos), pos);
      if (n === 0) throw new StrataError('Integrity', `restored file is shorter than its ${this.size} bytes`);
      await this.sha.update(this.readBack.subarray(0, n));
      pos += n;
    }
  }
}

/**
 * Staging window per file restored whole (files restored at once: twice the block workers). An
 * incremental's frame gathers changed pages from a long stretch of the file: after 30 s of pgbench
 * at scale 100 one frame's 128 pages span ~7 MiB, and with a 4 MiB window half of them were written
 * one by one and read back for the hash. The buffer is only as resident as the pages staged in it.
 */
const STAGING_BYTES = 32 * 1024 * 1024;
/** Bytes of a file's complete prefix worth one write. */
const FLUSH_BYTES = 4 * 1024 * 1024;
/** Files from this size on are hashed by the hash thread. */
const REMOTE_HASH_BYTES = FLUSH_BYTES;

export async function hashFile(handle: fs.FileHandle, size: number, sha: Hash): Promise<void> {
  const buf = Buffer.allocUnsafe(1024 * 1024);
  for (let pos = 0; pos < size;) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, size - pos), pos);
    if (bytesRead === 0) break;
    sha.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

export async function setMetadata(dest: string, file: ManifestFile, opts: { chown: boolean }): Promise<void> {
  if (opts.chown) await fs.lchown(dest, file.uid, file.gid);
  if (file.type !== 'link') {
    await fs.chmod(dest, file.mode);
    // Seconds as a double lose sub-microsecond precision on the way to a timespec: 123 ms can
    // land as 122.9999 ms, and then floor(mtimeMs) no longer matches the manifest (delta --force
    // and the next backup's change detection compare it). Aim for the middle of the millisecond.
    const t = (file.mtime + 0.5) / 1000;
    await fs.utimes(dest, t, t);
  }
}

/** The same through an open regular file's handle (no path lookups). */
export async function setMetadataOfHandle(handle: fs.FileHandle, file: ManifestFile, opts: { chown: boolean }): Promise<void> {
  if (opts.chown) await handle.chown(file.uid, file.gid);
  await handle.chmod(file.mode);
  const t = (file.mtime + 0.5) / 1000;
  await handle.utimes(t, t);
}

/** handle.write may write less than asked; loop until all of `data` is at `position`. */
async function writeAll(handle: fs.FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** Waits for every promise, then throws the first failure (none is left unhandled). */
async function settleAll(promises: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
