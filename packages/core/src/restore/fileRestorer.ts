import { createHash, type Hash } from 'node:crypto';
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

/** Reads frames and block maps of one backup chain, checking every checksum on the way. */
export class FrameReader {
  private readonly maps: BlockMapReader;
  bytesFetched = 0;
  /**
   * Full restore: fetch this many bytes of a pack from a frame on and serve the frames that follow
   * from memory (frames of small files lie side by side), instead of one ranged read each. Off for
   * delta restore, which fetches only what differs.
   */
  readAhead = 0;
  private readonly windows = new Map<string, { start: number; data: Buffer }[]>();
  private windowCount = 0;

  constructor(
    private readonly repo: Repo,
    private readonly manifest: Manifest,
    /** Decompression and page digests in worker threads (optional: without it, on this thread). */
    readonly pool?: BlockPool,
  ) {
    this.maps = new BlockMapReader(repo, manifest.cluster, manifest.label);
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
    use: (data: Buffer, digests: Buffer | undefined) => Promise<T> | T,
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
    use: (data: Buffer, digests: Buffer | undefined) => Promise<T> | T,
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
        const r = await pool.run({ op: 'decompress', slot: slot.index, length: raw.length });
        if (r.corrupt) throw this.corrupt(key, ref, what, r.corrupt, undefined, copy);
        if (r.bytes !== expectedSize)
          throw this.corrupt(key, ref, what, `frame holds ${r.bytes} bytes, expected ${expectedSize}`, undefined, copy);
        return await use(slot.input.subarray(0, r.bytes), slot.hashes);
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
    return use(data, undefined);
  }

  private async fetch(copy: Repository, key: string, ref: FrameRef): Promise<Buffer> {
    const end = ref.offset + ref.length;
    const cacheKey = `${copy.name}\0${key}`;
    const hit = this.windows.get(cacheKey)?.find((w) => ref.offset >= w.start && end <= w.start + w.data.length);
    if (hit) return hit.data.subarray(ref.offset - hit.start, end - hit.start);
    const want = Math.max(ref.length, this.readAhead);
    // A range past the end of the object returns what there is.
    const data = await copy.getBuffer(key, { range: { start: ref.offset, end: ref.offset + want } });
    this.bytesFetched += data.length;
    if (want > ref.length && data.length >= ref.length) {
      // A few windows (one per restoring lane or so), the oldest dropped first: memory stays bounded.
      if (this.windowCount >= 8) {
        const [oldestKey, list] = this.windows.entries().next().value!;
        list.shift();
        this.windowCount--;
        if (list.length === 0) this.windows.delete(oldestKey);
      }
      const list = this.windows.get(cacheKey) ?? [];
      this.windows.delete(cacheKey);
      this.windows.set(cacheKey, [...list, { start: ref.offset, data }]);
      this.windowCount++;
    }
    return data.length > ref.length ? data.subarray(0, ref.length) : data;
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
 * whole file's sha256 before its metadata is set.
 */
export async function restoreFile(file: ManifestFile, dest: string, reader: FrameReader, opts: { chown: boolean }): Promise<number> {
  const handle = await fs.open(dest, 'wx+', 0o600);
  const size = file.size ?? 0;
  try {
    let sha = createHash('sha256');
    let written = 0;
    if (file.data) {
      written = await reader.withFrame(file.data, size, file.path, async (data) => {
        sha.update(data);
        await writeAll(handle, data, 0);
        return data.length;
      });
    } else if (file.blockMap) {
      const result = await restorePages(file, size, handle, reader, sha);
      written = result.written;
      // Pages of a backup chain arrive out of order: hash the file as it now is on disk.
      if (!result.inOrder) {
        sha = createHash('sha256');
        await hashFile(handle, size, sha);
      }
    }
    if (written !== size) throw new StrataError('Integrity', `${file.path}: restored ${written} bytes, the manifest records ${size}`);
    if (file.sha256 && sha.digest('hex') !== file.sha256) {
      throw new StrataError('Integrity', `${file.path}: checksum of the restored file does not match the manifest`, {
        hint: 'the repository is damaged; restore from another copy',
      });
    }
  } finally {
    await handle.close();
  }
  await setMetadata(dest, file, opts);
  return size;
}

/**
 * Writes every page from the super block that holds its current content, fetching each needed
 * super block exactly once and checking each page's digest. Hashes into `sha` while pages arrive
 * in file order (a full backup); says so in `inOrder`.
 */
export async function restorePages(
  file: ManifestFile,
  size: number,
  handle: fs.FileHandle,
  reader: FrameReader,
  sha: Hash,
  /** Delta restore: only these pages are written (and only their super blocks fetched). */
  only?: Uint8Array,
): Promise<{ written: number; inOrder: boolean }> {
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
  const digest = Buffer.alloc(PAGE_HASH_BYTES);
  let written = 0;
  let nextInOrder = 0;
  // Super blocks in the order of the first page they hold.
  for (const index of new Set(owners.filter((_, page) => wanted(page)))) {
    const sb = map.superBlocks[index]!;
    const framePages = pagesOf(sb);
    const frameSize = sb.size ?? Math.min(sb.count * pageSize, size - sb.first * pageSize);
    written += await reader.withFrame(sb, frameSize, file.path, async (data, workerDigests) => {
      const digests = pageSize === reader.pageSize ? workerDigests : undefined;
      let run: { from: number; page: number; len: number } | undefined;
      let frameWritten = 0;
      const flush = async () => {
        if (!run) return;
        await writeAll(handle, data.subarray(run.from, run.from + run.len), run.page * pageSize);
        run = undefined;
      };
      for (let k = 0; k < framePages.length; k++) {
        const page = framePages[k]!;
        if (page >= pages || owners[page] !== index || !wanted(page)) continue;
        const from = k * pageSize;
        const len = Math.min(pageSize, size - page * pageSize);
        if (from + len > data.length) throw reader.corrupt(reader.packKey(sb), sb, file.path, `page ${page} is cut short`);
        const bytes = data.subarray(from, from + len);
        // A worker digested the frame's pages; a short page in mid-frame cannot be (frames are whole pages but the file's last).
        const got =
          digests && (len === pageSize || from + len === data.length)
            ? digests.subarray(k * PAGE_HASH_BYTES, (k + 1) * PAGE_HASH_BYTES)
            : (hashPages(bytes, pageSize, digest, 0), digest);
        if (!got.equals(expected.subarray(page * PAGE_HASH_BYTES, (page + 1) * PAGE_HASH_BYTES))) {
          throw reader.corrupt(reader.packKey(sb), sb, file.path, `page ${page} does not match its digest`);
        }
        if (nextInOrder === page) {
          sha.update(bytes);
          nextInOrder++;
        } else nextInOrder = -1;
        if (run && run.from + run.len === from && run.page + run.len / pageSize === page) run.len += len;
        else {
          await flush();
          run = { from, page, len };
        }
        frameWritten += len;
      }
      await flush();
      return frameWritten;
    });
  }
  return { written, inOrder: nextInOrder === pages };
}

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

/** handle.write may write less than asked; loop until all of `data` is at `position`. */
async function writeAll(handle: fs.FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
