import * as os from 'node:os';
import { createRequire } from 'node:module';
import type { Compressor } from '../plugins/contract.js';
import { WorkerPool } from './WorkerPool.js';
import { HashThread } from './HashThread.js';
import { builtWorkerUrl } from './workerUrl.js';
import { SlotRing, type Slot } from './slots.js';
import type { BlockJob, BlockResult, BlockWorkerData } from './blockJobs.js';

const binding = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');

/** Default parallelism: two workers, or the number of cores when there are fewer. */
export function defaultProcessMax(): number {
  return Math.max(1, Math.min(2, os.availableParallelism()));
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
  private hashes: HashThread | undefined;

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
      workerUrl: builtWorkerUrl('blockWorker'),
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

  /** The thread hashing large restored files (started on first use). */
  hashThread(): HashThread {
    return (this.hashes ??= new HashThread());
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.close(), this.hashes?.close()]);
  }
}
