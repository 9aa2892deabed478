import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import type { Compressor } from '../plugins/contract.js';
import type { BlockMapEntry, FrameRef, ManifestFile, SuperBlock } from '../manifest/types.js';
import type { PackWriter } from '../blocks/PackWriter.js';
import type { BlockMapWriter } from '../blocks/BlockMapWriter.js';
import { PAGE_HASH_BYTES, hashPages, pageCount } from '../blocks/pageHash.js';
import { pruneSuperBlocks } from '../blocks/superBlocks.js';
import type { ScanEntry } from './scan.js';

export interface CopierOptions {
  packs: PackWriter;
  blockMaps: BlockMapWriter;
  compressor: Compressor;
  pageSize: number;
  superBlockSize: number;
  /** Reused for every read; the compressor must not keep it after its promise settles. */
  readBuffer: Buffer;
  /** Reused to gather the changed pages of an incremental. */
  changedBuffer: Buffer;
  onBytes?: (n: number) => void;
}

/** The previous version of a file: its block map entry, with super blocks naming their backup. */
export interface ParentPages {
  map: BlockMapEntry;
  /** Label of the backup whose block map holds `map` (the default for its super blocks). */
  holder: string;
}

/**
 * Copies one file into packs: read in super blocks, hash each page, compress, append. With a
 * parent, only pages whose content differs from the parent's are stored (content comparison, so
 * writes PostgreSQL makes without WAL, like hint bits, are caught too); the block map points at the
 * parent's frames for the rest. The file may change while it is read (WAL replay repairs torn
 * pages): what was read is what is recorded; a file that vanished is skipped.
 */
export async function copyFile(entry: ScanEntry, opts: CopierOptions, parent?: ParentPages): Promise<ManifestFile | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(entry.absPath, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = await handle.stat();
    const { pageSize } = opts;
    const sha = createHash('sha256');
    const fresh: SuperBlock[] = [];
    let hashes = Buffer.alloc(pageCount(st.size, pageSize) * PAGE_HASH_BYTES + PAGE_HASH_BYTES);
    let hashLen = 0;
    let size = 0;
    const changed = parent ? new ChangedPages(opts, fresh) : undefined;
    const parentHashes = parent ? Buffer.from(parent.map.hashes, 'base64') : undefined;
    for (;;) {
      const buf = opts.readBuffer;
      const { bytesRead } = await handle.read(buf, 0, opts.superBlockSize, size);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      sha.update(chunk);
      const needed = hashLen + pageCount(bytesRead, pageSize) * PAGE_HASH_BYTES;
      if (needed > hashes.length) hashes = Buffer.concat([hashes.subarray(0, hashLen), Buffer.alloc(needed * 2 - hashLen)]);
      const firstPage = size / pageSize;
      const chunkHashesAt = hashLen;
      hashLen = hashPages(chunk, pageSize, hashes, hashLen);
      if (changed && parent && parentHashes) {
        for (let i = 0, off = 0; off < bytesRead; i++, off += pageSize) {
          const page = firstPage + i;
          const len = Math.min(pageSize, bytesRead - off);
          const parentLen = Math.min(pageSize, parent.map.size - page * pageSize);
          const h = hashes.subarray(chunkHashesAt + i * PAGE_HASH_BYTES, chunkHashesAt + (i + 1) * PAGE_HASH_BYTES);
          const same = len === parentLen && parentHashes.subarray(page * PAGE_HASH_BYTES, (page + 1) * PAGE_HASH_BYTES).equals(h);
          if (!same) await changed.add(page, chunk.subarray(off, off + len));
        }
      } else {
        const ref = await compressInto(opts, chunk);
        fresh.push({ ...ref, first: firstPage, count: pageCount(bytesRead, pageSize), size: bytesRead });
      }
      size += bytesRead;
      opts.onBytes?.(bytesRead);
      if (bytesRead < opts.superBlockSize) break;
    }
    await changed?.flush();
    const file: ManifestFile = {
      path: entry.path,
      type: 'file',
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: Math.floor(st.mtimeMs),
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
  } finally {
    await handle.close();
  }
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
