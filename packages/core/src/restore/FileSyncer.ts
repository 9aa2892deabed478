import * as fs from 'node:fs/promises';
import { StrataError } from '../errors/index.js';

/**
 * Makes restored files durable one by one, as each is finished, while the restore goes on.
 *
 * One syncfs(2) at the end (what restore did before) flushes the whole file system: on a database
 * host that is also the running cluster's dirty pages and whatever else was written there, and with
 * 24 GiB of memory the restored gigabytes themselves were still all in the page cache (writeback
 * starts at 10 % of memory), so the restore ended in seconds of writeback with nothing else to do.
 * Here each file gets an fsync once it is complete (a few at once: the journal commits them
 * together), and a large file an fdatasync every SYNC_EVERY bytes on the way, so its writeback runs
 * while the rest is fetched and decompressed. Directories are synced by the caller.
 *
 * Failures are kept: drain() throws the first, naming the file.
 */
export class FileSyncer {
  private readonly queue: { handle?: fs.FileHandle; path?: string; name: string }[] = [];
  private readonly workers = new Set<Promise<void>>();
  private readonly writeback = new WeakMap<fs.FileHandle, { synced: number; running?: Promise<void> }>();
  private readonly waiting: (() => void)[] = [];
  private failure: StrataError | undefined;
  /** Files made durable so far (for tests and the debug log). */
  synced = 0;

  constructor(
    private readonly concurrency = 2,
    /** Files waiting for their sync at most; a restore lane waits beyond (open descriptors). */
    private readonly maxPending = 128,
  ) {}

  /**
   * A large file's writer reports how far it has written: past SYNC_EVERY bytes since the last,
   * an fdatasync starts writeback of what is there (one at a time per file, not waited for).
   */
  progress(handle: fs.FileHandle, written: number, name: string): void {
    let state = this.writeback.get(handle);
    if (!state) this.writeback.set(handle, (state = { synced: 0 }));
    if (state.running || written - state.synced < SYNC_EVERY) return;
    const s = state;
    s.running = handle
      .datasync()
      .then(() => {
        s.synced = written;
      })
      .catch((err: unknown) => this.fail(err, name))
      .finally(() => (s.running = undefined));
  }

  /** Takes over a complete file's open handle: fsync'd, then closed, in the background. */
  async syncAndClose(handle: fs.FileHandle, name: string): Promise<void> {
    await this.enqueue({ handle, name });
  }

  /** The same for a file by its path (a delta restore's file patched in place and closed). */
  async syncPath(path: string, name: string): Promise<void> {
    await this.enqueue({ path, name });
  }

  /** Waits until every file handed over is durable and closed; throws the first failure. */
  async drain(): Promise<void> {
    while (this.workers.size > 0) await Promise.all(this.workers);
    if (this.failure !== undefined) throw this.failure;
  }

  private async enqueue(item: { handle?: fs.FileHandle; path?: string; name: string }): Promise<void> {
    while (this.queue.length >= this.maxPending) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.queue.push(item);
    if (this.workers.size < this.concurrency) {
      const w: Promise<void> = this.work().finally(() => this.workers.delete(w));
      this.workers.add(w);
    }
  }

  private async work(): Promise<void> {
    for (let item = this.queue.shift(); item; item = this.queue.shift()) {
      this.waiting.shift()?.();
      const handle = item.handle ?? (await fs.open(item.path!, 'r').catch((err: unknown) => this.fail(err, item.name)));
      if (!handle) continue;
      try {
        await this.writeback.get(handle)?.running;
        // Once one sync has failed the rest only close: the restore fails anyway.
        if (this.failure === undefined) {
          await handle.sync();
          this.synced++;
        }
      } catch (err) {
        this.fail(err, item.name);
      } finally {
        await handle.close().catch((err: unknown) => this.fail(err, item.name));
      }
    }
  }

  private fail(err: unknown, name: string): undefined {
    this.failure ??= new StrataError('Internal', `could not make ${name} durable: ${(err as Error).message}`, {
      cause: err,
      operation: 'restore',
      hint: 'check the target file system (free space, errors in the kernel log)',
    });
    return undefined;
  }
}

/** Bytes of a large file between the fdatasyncs that start its writeback. */
export const SYNC_EVERY = 64 * 1024 * 1024;
