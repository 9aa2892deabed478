import { xxh3 } from '@node-rs/xxhash';
import { keys } from '../repository/keys.js';
import type { Repo } from '../repository/Repo.js';
import type { FrameRef } from '../manifest/types.js';
import type { RateLimiter } from '../pipeline/RateLimiter.js';

/**
 * Appends compressed frames to numbered pack objects. Frames are copied into one of two reusable
 * pack buffers: one fills while the other is being written, so memory stays at two packs whatever
 * the backup size, and no per-pack garbage piles up for the collector.
 */
export class PackWriter {
  private buffers: [Buffer, Buffer];
  private active: 0 | 1 = 0;
  private currentSize = 0;
  private packNo = 0;
  private inFlight: Promise<void> | undefined;
  /** Appends from concurrent file copies run one at a time (a flush must not interleave). */
  private lock: Promise<unknown> = Promise.resolve();
  bytesWritten = 0;
  /** xxh3-128 (hex) of each pack written, by pack number: replication checks copies against it. */
  readonly hashes: string[] = [];

  constructor(
    private readonly repo: Repo,
    private readonly cluster: string,
    private readonly label: string,
    private readonly packSize: number,
    private readonly rate?: RateLimiter,
  ) {
    this.buffers = [Buffer.allocUnsafe(packSize), Buffer.allocUnsafe(packSize)];
  }

  /** Number of packs written so far (after close: all of them). */
  get packs(): number {
    return this.packNo;
  }

  async append(frame: Buffer): Promise<FrameRef> {
    return this.appendWith(frame.length, (dst) => frame.copy(dst));
  }

  /**
   * Lets `write` put up to `maxSize` bytes straight into the pack buffer (e.g. a compressor
   * writing its output in place) and returns where the frame landed.
   */
  appendWith(maxSize: number, write: (dst: Buffer) => number): Promise<FrameRef> {
    const done = this.lock.then(() => this.appendNow(maxSize, write));
    this.lock = done.catch(() => undefined);
    return done;
  }

  private async appendNow(maxSize: number, write: (dst: Buffer) => number): Promise<FrameRef> {
    if (this.currentSize > 0 && this.currentSize + maxSize > this.packSize) await this.flush();
    if (maxSize > this.buffers[this.active].length - this.currentSize) {
      // Only a frame larger than a whole pack gets here (super blocks bigger than packs).
      this.buffers[this.active] = Buffer.allocUnsafe(maxSize);
    }
    const offset = this.currentSize;
    const length = write(this.buffers[this.active].subarray(offset, offset + maxSize));
    this.currentSize += length;
    return { pack: this.packNo, offset, length };
  }

  private async flush(): Promise<void> {
    if (this.currentSize === 0) return;
    const body = this.buffers[this.active].subarray(0, this.currentSize);
    const key = keys.pack(this.cluster, this.label, this.packNo);
    this.hashes.push(packHash(body));
    // The other buffer is reused next: its write must have finished.
    await this.inFlight;
    const put = async () => {
      await this.rate?.take(body.length);
      await this.repo.put(key, body, { ifNoneMatch: true });
    };
    this.inFlight = put();
    // Attach a handler now so a failure is never unhandled; it is rethrown by the next await.
    this.inFlight.catch(() => undefined);
    this.bytesWritten += body.length;
    this.packNo++;
    this.currentSize = 0;
    this.active = this.active === 0 ? 1 : 0;
  }

  async close(): Promise<void> {
    await this.lock;
    await this.flush();
    await this.inFlight;
  }
}

/** The whole-pack checksum a manifest records (`packHashes`): xxh3-128, 32 hex digits. */
export function packHash(body: Buffer): string {
  return xxh3.xxh128(body).toString(16).padStart(32, '0');
}
