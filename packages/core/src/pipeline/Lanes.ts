/**
 * Runs async tasks at most `size` at a time. run() waits for a free lane (backpressure), so a
 * producer never queues more than `size` tasks. The first failure is kept: later run() calls
 * start nothing, and drain() throws it once every running task has settled.
 */
export class Lanes {
  private readonly running = new Set<Promise<void>>();
  private failure: { err: unknown } | undefined;

  constructor(readonly size: number) {}

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Starts `task` when a lane is free (not at all after a failure); resolves once it has started. */
  async run(task: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.size) await Promise.race(this.running);
    if (this.failure) return;
    const p: Promise<void> = task()
      .catch((err: unknown) => {
        this.failure ??= { err };
      })
      .finally(() => this.running.delete(p));
    this.running.add(p);
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
    if (this.failure) throw this.failure.err;
  }
}
