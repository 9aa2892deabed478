import { keys } from '../repository/keys.js';
import type { Repository } from '../repository/Repository.js';
import type { FrameRef } from '../manifest/types.js';
import type { Tags } from '../plugins/contract.js';

/**
 * Appends compressed frames to numbered pack objects. A pack is buffered up to `packSize` and then
 * written in one put; at most one put is in flight while the next pack fills, so memory stays at
 * about two packs whatever the backup size.
 */
export class PackWriter {
  private current: Buffer[] = [];
  private currentSize = 0;
  private packNo = 0;
  private inFlight: Promise<void> | undefined;
  bytesWritten = 0;

  constructor(
    private readonly repo: Repository,
    private readonly cluster: string,
    private readonly label: string,
    private readonly packSize: number,
    private readonly tags: Tags,
  ) {}

  /** Number of packs written so far (after close: all of them). */
  get packs(): number {
    return this.packNo;
  }

  async append(frame: Buffer): Promise<FrameRef> {
    if (this.currentSize > 0 && this.currentSize + frame.length > this.packSize) await this.flush();
    const ref: FrameRef = { pack: this.packNo, offset: this.currentSize, length: frame.length };
    this.current.push(frame);
    this.currentSize += frame.length;
    return ref;
  }

  private async flush(): Promise<void> {
    if (this.currentSize === 0) return;
    const body = Buffer.concat(this.current, this.currentSize);
    const key = keys.pack(this.cluster, this.label, this.packNo);
    this.current = [];
    this.currentSize = 0;
    this.packNo++;
    await this.inFlight;
    this.inFlight = this.repo.put(key, body, { ifNoneMatch: true, tags: this.tags });
    // Attach a handler now so a failure is never unhandled; it is rethrown by the next await.
    this.inFlight.catch(() => undefined);
    this.bytesWritten += body.length;
  }

  async close(): Promise<void> {
    await this.flush();
    await this.inFlight;
  }
}
