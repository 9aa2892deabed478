// The CPU half of archive-push (read, checksum, compress), apart from the store half in
// archive.ts: the async pusher runs it in worker threads that load nothing else (no config, no
// schemas, no storage plugin), so they start in a few milliseconds.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { lightFs as fs } from '../lightFs.js';
import { readSegmentHeader, type SegmentHeader } from './segmentHeader.js';
import { unreadableWal, walNameOf } from './walFile.js';

const require = createRequire(import.meta.url);
type Binding = typeof import('zstd-napi/binding.js');
let binding: Binding | undefined;

/** A codec core runs itself, with output any compressor declaring the same `parallel` accepts. */
export interface WalCodec {
  codec: 'zstd' | 'none';
  level: number;
}

export interface PreparedWal {
  walName: string;
  size: number;
  sha256: string;
  /** The segment's long page header, when it has one (history and other files do not). */
  header?: SegmentHeader;
  /** The compressed object; the file's own bytes when `codec` is undefined (left to the compressor). */
  body: Buffer;
  codec?: WalCodec;
}

/** A compressor's codec when core runs it itself (the zstd and none plugins); undefined for any other. */
export function codecOf(compressor: { readonly parallel?: WalCodec }): WalCodec | undefined {
  const p = compressor.parallel;
  return p ? { codec: p.codec, level: p.level } : undefined;
}

export function sameCodec(a: WalCodec | undefined, b: WalCodec | undefined): boolean {
  return a !== undefined && b !== undefined && a.codec === b.codec && (a.codec === 'none' || a.level === b.level);
}

/**
 * Buffers one thread reuses from file to file: a worker preparing WAL segments one after another
 * allocates nothing per segment but the body it hands over (16 MiB read buffers were most of its
 * garbage collection).
 */
export class WalScratch {
  private input = Buffer.alloc(0);
  private output = Buffer.alloc(0);
  private readonly contexts = new Map<number, InstanceType<Binding['CCtx']>>();

  inputOf(size: number): Buffer {
    if (this.input.length < size) this.input = Buffer.allocUnsafeSlow(size);
    return this.input.subarray(0, size);
  }

  outputOf(size: number): Buffer {
    if (this.output.length < size) this.output = Buffer.allocUnsafeSlow(size);
    return this.output.subarray(0, size);
  }

  cctx(level: number): InstanceType<Binding['CCtx']> {
    let ctx = this.contexts.get(level);
    if (!ctx) {
      binding ??= require('zstd-napi/binding') as Binding;
      ctx = new binding.CCtx();
      ctx.setParameter(binding.CParameter.compressionLevel, level);
      // As the zstd plugin writes them: a damaged object fails to decompress.
      ctx.setParameter(binding.CParameter.checksumFlag, 1);
      this.contexts.set(level, ctx);
    }
    return ctx;
  }
}

/**
 * Reads a WAL file whole, checksums it and compresses it with `codec` (undefined: the body is the
 * file's bytes, for a compressor core cannot run). The body never shares memory with `scratch`.
 */
export function prepareWal(walPath: string, codec: WalCodec | undefined, scratch = new WalScratch()): PreparedWal {
  const walName = walNameOf(walPath);
  const data = readWhole(walPath, scratch);
  const sha256 = createHash('sha256').update(data).digest('hex');
  const header = readSegmentHeader(data);
  let body: Buffer;
  if (codec?.codec === 'zstd') {
    binding ??= require('zstd-napi/binding') as Binding;
    const out = scratch.outputOf(binding.compressBound(data.length));
    body = copyOf(out.subarray(0, scratch.cctx(codec.level).compress2(out, data)));
  } else body = copyOf(data);
  return { walName, size: data.length, sha256, ...(header ? { header } : {}), body, ...(codec ? { codec } : {}) };
}

/** An exact-size copy with its own ArrayBuffer (so a worker can transfer it). */
function copyOf(data: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(data.length);
  data.copy(copy);
  return copy;
}

function readWhole(walPath: string, scratch: WalScratch): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(walPath, 'r');
  } catch (err) {
    throw unreadableWal(walPath, err);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const buf = scratch.inputOf(size);
    let pos = 0;
    while (pos < size) {
      const n = fs.readSync(fd, buf, pos, size - pos, pos);
      if (n === 0) break;
      pos += n;
    }
    return buf.subarray(0, pos);
  } catch (err) {
    throw unreadableWal(walPath, err);
  } finally {
    fs.closeSync(fd);
  }
}
