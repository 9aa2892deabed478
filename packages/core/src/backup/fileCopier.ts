import { createHash } from 'node:crypto';
import type { Compressor } from '../plugins/contract.js';
import type { BlockMapEntry, FrameRef, ManifestFile, SuperBlock } from '../manifest/types.js';
import type { PackWriter } from '../blocks/PackWriter.js';
import type { BlockMapWriter } from '../blocks/BlockMapWriter.js';
import { PAGE_HASH_BYTES, pageCount } from '../blocks/pageHash.js';
import type { BlockPool } from '../pipeline/BlockPool.js';
import { ownSlice, type BlockResult } from '../pipeline/blockJobs.js';
import type { RateLimiter } from '../pipeline/RateLimiter.js';
import type { Slot } from '../pipeline/slots.js';
import { pruneSuperBlocks } from '../blocks/superBlocks.js';
import type { ScanEntry } from './scan.js';

export interface CopierOptions {
  packs: PackWriter;
  blockMaps: BlockMapWriter;
  compressor: Compressor;
  /** Reads, page digests and (when the compressor has a worker codec) compression run here. */
  pool: BlockPool;
  pageSize: number;
  superBlockSize: number;
  /** Reused to gather the changed pages of an incremental (one per concurrent file). */
  changedBuffer: Buffer;
  /** Paces the reads of data files (--max-rate). */
  readRate?: RateLimiter;
  onBytes?: (n: number) => void;
}

/** The previous version of a file: its block map entry, with super blocks naming their backup. */
export interface ParentPages {
  map: BlockMapEntry;
  /** Label of the backup whose block map holds `map` (the default for its super blocks). */
  holder: string;
}

interface Chunk {
  slot: Slot;
  position: number;
  job: Promise<BlockResult>;
}

/**
 * Copies one file into packs: read in super blocks, hash each page, compress, append. The reads,
 * page digests and compression of several super blocks run at once in the block pool; results are
 * taken in file order, so the file's sha256 and its frames follow the file. With a parent, only
 * pages whose content differs from the parent's are stored (content comparison, so writes
 * PostgreSQL makes without WAL, like hint bits, are caught too); the block map points at the
 * parent's frames for the rest. The file may change while it is read (WAL replay repairs torn
 * pages): what was read is what is recorded — it ends at the first short read; a file that
 * vanished is skipped.
 */
export async function copyFile(entry: ScanEntry, opts: CopierOptions, parent?: ParentPages): Promise<ManifestFile | undefined> {
  const { pageSize, pool, superBlockSize: sbSize } = opts;
  const inWorker = opts.compressor.parallel !== undefined && !parent;
  const sha = createHash('sha256');
  const fresh: SuperBlock[] = [];
  let hashes = Buffer.alloc(pageCount(entry.stat.size, pageSize) * PAGE_HASH_BYTES + PAGE_HASH_BYTES);
  let hashLen = 0;
  let size = 0;
  const changed = parent ? new ChangedPages(opts, fresh) : undefined;
  const parentHashes = parent ? Buffer.from(parent.map.hashes, 'base64') : undefined;
  const plannedEnd = Math.max(1, Math.ceil(entry.stat.size / sbSize)) * sbSize;
  const queue: Chunk[] = [];
  let nextPos = 0;
  let ended = false;
  let missing = false;

  // Never wait for a slot while holding one: files copied concurrently would wait on each other.
  const fill = async () => {
    while (!ended && (nextPos < plannedEnd || queue.length === 0)) {
      const slot = queue.length === 0 ? await pool.acquire() : pool.tryAcquire();
      if (!slot) return;
      const position = nextPos;
      nextPos += sbSize;
      const firstPage = position / pageSize;
      const job = pool.run({
        op: 'read',
        slot: slot.index,
        path: entry.absPath,
        position,
        length: sbSize,
        compress: inWorker,
        ...(parentHashes && parent
          ? {
              parent: {
                hashes: ownSlice(parentHashes, firstPage * PAGE_HASH_BYTES, (firstPage + sbSize / pageSize) * PAGE_HASH_BYTES),
                size: parent.map.size - position,
              },
            }
          : {}),
      });
      job.catch(() => undefined); // rethrown when taken in order
      queue.push({ slot, position, job });
      if (opts.readRate) await opts.readRate.take(Math.min(sbSize, Math.max(pageSize, entry.stat.size - position)));
    }
  };

  try {
    await fill();
    while (queue.length > 0) {
      const chunk = queue[0]!;
      const r = await chunk.job;
      if (r.ioError) throw Object.assign(new Error(`cannot read ${entry.absPath}: ${r.ioError.message}`), { code: r.ioError.code });
      if (r.missing) {
        // Gone before its first byte: skipped. Gone later: it ends where it was cut.
        if (chunk.position === 0) missing = true;
        ended = true;
      } else {
        const data = chunk.slot.input.subarray(0, r.bytes);
        sha.update(data);
        const n = pageCount(r.bytes, pageSize) * PAGE_HASH_BYTES;
        if (hashLen + n > hashes.length) hashes = Buffer.concat([hashes.subarray(0, hashLen), Buffer.alloc((hashLen + n) * 2 - hashLen)]);
        chunk.slot.hashes.copy(hashes, hashLen, 0, n);
        hashLen += n;
        const firstPage = chunk.position / pageSize;
        if (changed) {
          for (const i of r.changed ?? [])
            await changed.add(firstPage + i, data.subarray(i * pageSize, Math.min((i + 1) * pageSize, r.bytes)));
        } else if (r.bytes > 0) {
          const ref =
            r.compressed >= 0
              ? await opts.packs.appendWith(r.compressed, (dst) => chunk.slot.output.copy(dst, 0, 0, r.compressed))
              : await compressInto(opts, data);
          fresh.push({ ...ref, first: firstPage, count: pageCount(r.bytes, pageSize), size: r.bytes });
        }
        size += r.bytes;
        opts.onBytes?.(r.bytes);
        if (r.bytes < sbSize) ended = true;
      }
      queue.shift();
      pool.release(chunk.slot);
      await fill();
    }
  } finally {
    // After an error or a short read: let the chunks read ahead finish before their slots are reused.
    for (const chunk of queue.splice(0)) {
      await chunk.job.catch(() => undefined);
      pool.release(chunk.slot);
    }
  }
  if (missing) return undefined;
  await changed?.flush();
  const file: ManifestFile = {
    path: entry.path,
    type: 'file',
    mode: entry.stat.mode & 0o7777,
    uid: entry.stat.uid,
    gid: entry.stat.gid,
    mtime: Math.floor(entry.stat.mtimeMs),
    size,
    sha256: sha.digest('hex'),
  };
  if (!parent && fresh.length === 1) {
    const { pack, offset, length } = fresh[0]!;
    file.data = { pack, offset, length };
  } else if (parent || fresh.length > 1) {
    const inherited = parent ? parent.map.superBlocks.map((sb) => ({ ...sb, backup: sb.backup ?? parent.holder })) : [];
    file.blockMap = await opts.blockMaps.add({
      path: entry.path,
      size,
      pageSize,
      hashes: hashes.subarray(0, hashLen).toString('base64'),
      superBlocks: pruneSuperBlocks([...inherited, ...fresh], pageCount(size, pageSize)),
    });
  }
  return file;
}

function compressInto(opts: CopierOptions, data: Buffer): Promise<FrameRef> {
  const { compressor } = opts;
  return compressor.compressInto && compressor.bound
    ? opts.packs.appendWith(compressor.bound(data.length), (dst) => compressor.compressInto!(data, dst))
    : compressor.compress(data).then((frame) => opts.packs.append(frame));
}

/** Gathers changed pages into frames of up to one super block, in page order. */
class ChangedPages {
  private pages: number[] = [];
  private bytes = 0;

  constructor(
    private readonly opts: CopierOptions,
    private readonly out: SuperBlock[],
  ) {}

  async add(page: number, data: Buffer): Promise<void> {
    if (this.bytes + data.length > this.opts.changedBuffer.length) await this.flush();
    data.copy(this.opts.changedBuffer, this.bytes);
    this.pages.push(page);
    this.bytes += data.length;
  }

  async flush(): Promise<void> {
    if (this.pages.length === 0) return;
    const ref = await compressInto(this.opts, this.opts.changedBuffer.subarray(0, this.bytes));
    const first = this.pages[0]!;
    const contiguous = this.pages[this.pages.length - 1] === first + this.pages.length - 1;
    this.out.push({ ...ref, first, count: this.pages.length, ...(contiguous ? {} : { pages: this.pages }), size: this.bytes });
    this.pages = [];
    this.bytes = 0;
  }
}
