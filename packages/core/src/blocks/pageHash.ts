import { xxh3 } from '@node-rs/xxhash';

/** Per-page digests: xxh3-64, 8 bytes each, big-endian. The class API is ~2.5x faster than one-shot calls. */
export const PAGE_HASH_BYTES = 8;
const hasher = xxh3.Xxh3.withSeed(0n);

export function hashPages(data: Buffer, pageSize: number, out: Buffer, outOffset: number): number {
  let o = outOffset;
  for (let off = 0; off < data.length; off += pageSize) {
    hasher.reset();
    hasher.update(data.subarray(off, Math.min(off + pageSize, data.length)));
    out.writeBigUInt64BE(hasher.digest(), o);
    o += PAGE_HASH_BYTES;
  }
  return o;
}

export function pageCount(size: number, pageSize: number): number {
  return Math.ceil(size / pageSize);
}
