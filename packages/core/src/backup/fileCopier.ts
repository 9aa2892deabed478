import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import type { Compressor } from '../plugins/contract.js';
import type { ManifestFile, SuperBlock } from '../manifest/types.js';
import type { PackWriter } from '../blocks/PackWriter.js';
import type { BlockMapWriter } from '../blocks/BlockMapWriter.js';
import { PAGE_HASH_BYTES, hashPages, pageCount } from '../blocks/pageHash.js';
import type { ScanEntry } from './scan.js';

export interface CopierOptions {
  packs: PackWriter;
  blockMaps: BlockMapWriter;
  compressor: Compressor;
  pageSize: number;
  superBlockSize: number;
  /** Reused for every read; the compressor must not keep it after its promise settles. */
  readBuffer: Buffer;
  onBytes?: (n: number) => void;
}

/**
 * Copies one file into packs: read in super blocks, hash each page, compress, append. The file may
 * change while it is read (PostgreSQL keeps writing; WAL replay repairs torn pages): what was read
 * is what is recorded, and a file that vanished is skipped.
 */
export async function copyFile(entry: ScanEntry, opts: CopierOptions): Promise<ManifestFile | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(entry.absPath, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = await handle.stat();
    const sha = createHash('sha256');
    const superBlocks: SuperBlock[] = [];
    let hashes = Buffer.alloc(pageCount(st.size, opts.pageSize) * PAGE_HASH_BYTES + PAGE_HASH_BYTES);
    let hashLen = 0;
    let size = 0;
    for (;;) {
      const buf = opts.readBuffer;
      const { bytesRead } = await handle.read(buf, 0, opts.superBlockSize, size);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      sha.update(chunk);
      const needed = hashLen + pageCount(bytesRead, opts.pageSize) * PAGE_HASH_BYTES;
      if (needed > hashes.length) hashes = Buffer.concat([hashes.subarray(0, hashLen), Buffer.alloc(needed * 2 - hashLen)]);
      hashLen = hashPages(chunk, opts.pageSize, hashes, hashLen);
      const { compressor } = opts;
      const ref =
        compressor.compressInto && compressor.bound
          ? await opts.packs.appendWith(compressor.bound(chunk.length), (dst) => compressor.compressInto!(chunk, dst))
          : await opts.packs.append(await compressor.compress(chunk));
      superBlocks.push({ ...ref, first: size / opts.pageSize, count: pageCount(bytesRead, opts.pageSize) });
      size += bytesRead;
      opts.onBytes?.(bytesRead);
      if (bytesRead < opts.superBlockSize) break;
    }
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
    if (superBlocks.length === 1) {
      const { pack, offset, length } = superBlocks[0]!;
      file.data = { pack, offset, length };
    } else if (superBlocks.length > 1) {
      file.blockMap = await opts.blockMaps.add({
        path: entry.path,
        size,
        pageSize: opts.pageSize,
        hashes: hashes.subarray(0, hashLen).toString('base64'),
        superBlocks,
      });
    }
    return file;
  } finally {
    await handle.close();
  }
}
