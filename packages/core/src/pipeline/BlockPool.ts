import * as fs from 'node:fs';
import * as os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { StrataError } from '../errors/index.js';
import type { Compressor } from '../plugins/contract.js';
import { WorkerPool } from './WorkerPool.js';
import { SlotRing, type Slot } from './slots.js';
import type { BlockJob, BlockResult, BlockWorkerData } from './blockJobs.js';

const binding = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');

/** Default parallelism: two workers, or the number of cores when there are fewer. */
export function defaultProcessMax(): number {
  return Math.max(1, Math.min(2, os.availableParallelism()));
}

/**
 * The built worker module. Unit tests run core from its TypeScript sources, where no .js sits
 * beside this file: they use the build output (run `npx tsc -b` first).
 */
export function blockWorkerUrl(): URL {
  const here = new URL('./blockWorker.js', import.meta.url);
  if (fs.existsSync(fileURLToPath(here))) return here;
  const built = fileURLToPath(here).replace(/([\\/])src([\\/])pipeline([\\/])blockWorker\.js$/, '$1dist$2pipeline$3blockWorker.js');
  if (!fs.existsSync(built)) {
    throw new StrataError('Internal', `the block worker module is missing (${built})`, { hint: 'build the project first (npx tsc -b)' });
  }
  return pathToFileURL(built);
}

export interface BlockPoolOptions {
  processMax: number;
  superBlockSize: number;
  pageSize: number;
  /** The codec the workers run: only compressors that declare one can be run off the main thread. */
  codec: 'zstd' | 'none';
  level: number;
  /** Slots (super blocks in flight); default 3 per worker plus 2. */
  slots?: number;
}

/** Which worker codec reproduces `compressor` exactly, if any. */
export function workerCodecOf(compressor: Compressor): { codec: 'zstd' | 'none'; level: number } | undefined {
  return compressor.parallel;
}

/** Worker threads plus the shared slots they work in. */
export class BlockPool {
  readonly slots: SlotRing;
  private readonly pool: WorkerPool<BlockJob, BlockResult>;

  constructor(readonly opts: BlockPoolOptions) {
    const outSize = Math.max(binding.compressBound(opts.superBlockSize), opts.superBlockSize);
    this.slots = new SlotRing({
      slots: opts.slots ?? opts.processMax * 3 + 2,
      inSize: opts.superBlockSize,
      outSize,
      pageSize: opts.pageSize,
    });
    const workerData: BlockWorkerData = { sab: this.slots.sab, layout: this.slots.layout, codec: opts.codec, level: opts.level };
    this.pool = new WorkerPool<BlockJob, BlockResult>({
      size: opts.processMax,
      workerUrl: blockWorkerUrl(),
      workerData,
      maxInFlight: this.slots.layout.slots,
    });
  }

  /** Worker threads. */
  get size(): number {
    return this.pool.size;
  }

  acquire(): Promise<Slot> {
    return this.slots.acquire();
  }

  tryAcquire(): Slot | undefined {
    return this.slots.tryAcquire();
  }

  release(slot: Slot): void {
    this.slots.release(slot);
  }

  run(job: BlockJob): Promise<BlockResult> {
    return this.pool.run(job);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
