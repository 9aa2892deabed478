import type { SlotLayout } from './slots.js';

/** What the block workers can do; `slot` names the shared buffers the job works in. */
export type BlockJob =
  | {
      /** Read `length` bytes of `path` at `position` into the slot, digest its pages, optionally compress them. */
      op: 'read';
      slot: number;
      path: string;
      position: number;
      length: number;
      compress: boolean;
      /**
       * Incremental: the parent's digests of these pages and how many bytes the parent file had
       * from `position` on; the job reports which pages differ.
       */
      parent?: { hashes: Uint8Array; size: number };
    }
  | { op: 'compress'; slot: number; length: number }
  /**
   * Decompress the slot's `length` compressed bytes into its input area and digest the pages —
   * unless `digest` is false and the frame carries its codec's content checksum (verified while
   * decompressing): then `checksummed` is set and no digests are computed.
   */
  | { op: 'decompress'; slot: number; length: number; digest?: boolean }
  | {
      /**
       * Delta restore: read the first `length` bytes of `path` in order (in the worker's own
       * buffer, no slot); with `expected` (the manifest's page digests of a `size`-byte file)
       * report the pages that differ; with `sha256`, the sha256 of the bytes read — given up at
       * the first differing page, as the file will change.
       */
      op: 'digestFile';
      path: string;
      length: number;
      expected?: { hashes: Uint8Array; size: number };
      sha256: boolean;
    };

export interface BlockResult {
  /** Raw bytes read or decompressed. */
  bytes: number;
  /** Compressed bytes in the slot's output area (-1: not compressed). */
  compressed: number;
  /** Incremental reads: indices (within the chunk) of pages that differ from the parent; digestFile: within the file. */
  changed?: number[];
  /** digestFile: hex sha256 of the bytes read (absent once a page differed). */
  sha256?: string;
  /** The file does not exist (any more). */
  missing?: boolean;
  /** A read failed: errno code and message, rethrown on the main thread. */
  ioError?: { code: string; message: string };
  /** Decompression failed: why. */
  corrupt?: string;
  /** decompress: the frame's content checksum was verified and no page digests were computed. */
  checksummed?: boolean;
}

export interface BlockWorkerData {
  sab: SharedArrayBuffer;
  layout: SlotLayout;
  codec: 'zstd' | 'none';
  level: number;
}

/**
 * A copy of `buf[start, end)` in its own ArrayBuffer. postMessage clones a view's whole buffer:
 * a subarray of a file's digests (or of Buffer's 8 KiB pool) would copy all of it with every job.
 */
export function ownSlice(buf: Buffer, start: number, end: number): Uint8Array {
  return new Uint8Array(buf.subarray(start, end));
}
