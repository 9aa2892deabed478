/**
 * A block worker thread: reads, digests, compresses and decompresses super blocks in the slots it
 * shares with the main thread, so the main thread only schedules and writes.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import { PAGE_HASH_BYTES, hashPages } from '../blocks/pageHash.js';
import type { BlockJob, BlockResult, BlockWorkerData } from './blockJobs.js';
import { slotViews } from './slots.js';

const binding = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');
const data = workerData as BlockWorkerData;
const slots = slotViews(data.sab, data.layout);
const pageSize = data.layout.pageSize;
const cctx = new binding.CCtx();
cctx.setParameter(binding.CParameter.compressionLevel, data.level);
cctx.setParameter(binding.CParameter.checksumFlag, 1);
const dctx = new binding.DCtx();

function compress(input: Buffer, output: Buffer): number {
  if (data.codec === 'none') return input.copy(output);
  return cctx.compress2(output, input);
}

/** A file opened for reading, or the result that says it vanished (ENOENT) or cannot be read. */
function openForRead(file: string): number | BlockResult {
  try {
    return fs.openSync(file, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return { bytes: 0, compressed: -1, missing: true };
    return { bytes: 0, compressed: -1, ioError: { code: e.code ?? 'EIO', message: e.message } };
  }
}

function read(job: Extract<BlockJob, { op: 'read' }>): BlockResult {
  const slot = slots[job.slot]!;
  const fd = openForRead(job.path);
  if (typeof fd !== 'number') return fd;
  let bytes = 0;
  try {
    // A short read ends the file (it may be cut while we read it); loop only on partial reads.
    while (bytes < job.length) {
      const n = fs.readSync(fd, slot.input, bytes, job.length - bytes, job.position + bytes);
      if (n === 0) break;
      bytes += n;
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { bytes: 0, compressed: -1, ioError: { code: e.code ?? 'EIO', message: e.message } };
  } finally {
    fs.closeSync(fd);
  }
  const chunk = slot.input.subarray(0, bytes);
  hashPages(chunk, pageSize, slot.hashes, 0);
  const result: BlockResult = { bytes, compressed: -1 };
  if (job.parent) {
    const changed: number[] = [];
    for (let i = 0, off = 0; off < bytes; i++, off += pageSize) {
      const len = Math.min(pageSize, bytes - off);
      const parentLen = Math.min(pageSize, job.parent.size - off);
      const at = i * PAGE_HASH_BYTES;
      const same =
        len === parentLen &&
        at + PAGE_HASH_BYTES <= job.parent.hashes.length &&
        Buffer.compare(slot.hashes.subarray(at, at + PAGE_HASH_BYTES), job.parent.hashes.subarray(at, at + PAGE_HASH_BYTES)) === 0;
      if (!same) changed.push(i);
    }
    result.changed = changed;
  }
  if (job.compress && bytes > 0) result.compressed = compress(chunk, slot.output);
  return result;
}

/** digestFile's read buffer and its page digests: the worker's own, allocated once. */
let fileBuffer: Buffer | undefined;
let fileDigests: Buffer | undefined;

function digestFile(job: Extract<BlockJob, { op: 'digestFile' }>): BlockResult {
  const fd = openForRead(job.path);
  if (typeof fd !== 'number') return fd;
  const buf = (fileBuffer ??= Buffer.allocUnsafe(1024 * 1024 - ((1024 * 1024) % pageSize)));
  const digests = (fileDigests ??= Buffer.alloc((buf.length / pageSize) * PAGE_HASH_BYTES));
  const sha = job.sha256 ? createHash('sha256') : undefined;
  const changed: number[] = [];
  let bytes = 0;
  try {
    while (bytes < job.length) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, job.length - bytes), bytes);
      if (n === 0) break;
      if (job.expected) {
        const { hashes, size } = job.expected;
        hashPages(buf.subarray(0, n), pageSize, digests, 0);
        for (let off = 0, i = 0; off < n; off += pageSize, i++) {
          const page = (bytes + off) / pageSize;
          const at = page * PAGE_HASH_BYTES;
          // A page cut short by the old size differs, whatever its digest.
          const same =
            Math.min(pageSize, n - off) === Math.min(pageSize, size - page * pageSize) &&
            Buffer.compare(digests.subarray(i * PAGE_HASH_BYTES, (i + 1) * PAGE_HASH_BYTES), hashes.subarray(at, at + PAGE_HASH_BYTES)) ===
              0;
          if (!same) changed.push(page);
        }
      }
      if (changed.length === 0) sha?.update(buf.subarray(0, n));
      bytes += n;
      // Reads are whole buffers (a multiple of the page size) until the last one.
      if (n < Math.min(buf.length, job.length - (bytes - n))) break;
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { bytes: 0, compressed: -1, ioError: { code: e.code ?? 'EIO', message: e.message } };
  } finally {
    fs.closeSync(fd);
  }
  return { bytes, compressed: -1, changed, ...(sha && changed.length === 0 ? { sha256: sha.digest('hex') } : {}) };
}

function run(job: BlockJob): BlockResult {
  if (job.op === 'digestFile') return digestFile(job);
  const slot = slots[job.slot]!;
  switch (job.op) {
    case 'read':
      return read(job);
    case 'compress':
      return { bytes: job.length, compressed: compress(slot.input.subarray(0, job.length), slot.output) };
    case 'decompress': {
      let bytes: number;
      try {
        bytes =
          data.codec === 'none'
            ? slot.output.copy(slot.input, 0, 0, job.length)
            : dctx.decompress(slot.input, slot.output.subarray(0, job.length));
      } catch (err) {
        return { bytes: 0, compressed: job.length, corrupt: `frame does not decompress: ${(err as Error).message}` };
      }
      // A zstd frame header's descriptor (byte 4) has bit 2 set when the frame ends with a checksum
      // of its content, which decompression has just verified.
      if (job.digest === false && data.codec === 'zstd' && (slot.output[4]! & 0x04) !== 0)
        return { bytes, compressed: job.length, checksummed: true };
      hashPages(slot.input.subarray(0, bytes), pageSize, slot.hashes, 0);
      return { bytes, compressed: job.length };
    }
  }
}

parentPort!.on('message', (msg: BlockJob & { id: number }) => {
  try {
    parentPort!.postMessage({ id: msg.id, ok: true, value: run(msg) });
  } catch (err) {
    parentPort!.postMessage({ id: msg.id, ok: false, error: { message: (err as Error).message } });
  }
});
