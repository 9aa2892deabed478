/**
 * Fixed buffers shared with the worker threads (one SharedArrayBuffer, allocated once): a slot
 * holds one super block of raw data, room for its compressed frame and its page digests. Work in
 * flight is bounded by the number of slots; a caller that finds none free waits (backpressure).
 */
export interface SlotLayout {
  slots: number;
  /** Raw bytes per slot: one super block. */
  inSize: number;
  /** Compressed bytes per slot: the codec's bound for one super block. */
  outSize: number;
  /** Page size, for the digest area (8 bytes per page). */
  pageSize: number;
}

export interface Slot {
  index: number;
  input: Buffer;
  output: Buffer;
  hashes: Buffer;
}

export function hashAreaSize(layout: SlotLayout): number {
  return Math.ceil(layout.inSize / layout.pageSize) * 8;
}

/** Views of every slot over `sab` (the main thread and each worker build the same ones). */
export function slotViews(sab: SharedArrayBuffer, layout: SlotLayout): Slot[] {
  const hashSize = hashAreaSize(layout);
  const stride = layout.inSize + layout.outSize + hashSize;
  return Array.from({ length: layout.slots }, (_, index) => {
    const base = index * stride;
    return {
      index,
      input: Buffer.from(sab, base, layout.inSize),
      output: Buffer.from(sab, base + layout.inSize, layout.outSize),
      hashes: Buffer.from(sab, base + layout.inSize + layout.outSize, hashSize),
    };
  });
}

export class SlotRing {
  readonly sab: SharedArrayBuffer;
  private readonly all: Slot[];
  private readonly free: Slot[];
  private readonly waiters: ((slot: Slot) => void)[] = [];

  constructor(readonly layout: SlotLayout) {
    this.sab = new SharedArrayBuffer(layout.slots * (layout.inSize + layout.outSize + hashAreaSize(layout)));
    this.all = slotViews(this.sab, layout);
    this.free = [...this.all].reverse();
  }

  get available(): number {
    return this.free.length;
  }

  /** A free slot, waiting (FIFO) until one is released. */
  acquire(): Promise<Slot> {
    const slot = this.free.pop();
    if (slot) return Promise.resolve(slot);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** A free slot now, or undefined: for callers that already hold slots and must not wait (deadlock). */
  tryAcquire(): Slot | undefined {
    return this.waiters.length === 0 ? this.free.pop() : undefined;
  }

  release(slot: Slot): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(slot);
    else this.free.push(slot);
  }
}
