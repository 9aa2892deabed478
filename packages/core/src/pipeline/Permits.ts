/**
 * A counting semaphore with FIFO waiters. Restore takes one permit per frame it starts: with no
 * more frames in flight than the block pool has slots, every started frame gets a slot, so frames
 * that wait for their turn (file order) while holding a slot can never starve the frame they wait for.
 */
export class Permits {
  private free: number;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter();
    else this.free++;
  }
}
