import { Worker } from 'node:worker_threads';
// Light imports only (not @strata/core/base, which loads every schema): the repository is opened
// after the workers have started.
import type { ArchivePushResult, Logger, Repo, storePreparedWal } from '@strata/core/base';
import { StrataError, type ErrorCode } from '@strata/core/errors';
import { codecOf, type PreparedWal, type WalCodec } from '@strata/core/wal/prepare';
import { runPusher, type PusherResult } from '@strata/core/wal/pusher';
import { ArchiveSpool } from '@strata/core/wal/spool';
import type { GlobalFlags } from '../cli/context.js';
import { asyncTargetOf } from './asyncClient.js';
import { readCachedTarget, writeCachedTarget } from './targetCache.js';
import type { WorkerReply, WorkerRequest } from './pushWorker.js';

/** How long the background pusher waits for new ready files before it exits. */
export const PUSHER_IDLE_MS = 10_000;

/**
 * Files in flight per worker thread: one is prepared while the main thread stores the one before
 * (its object and directory fsyncs take about as long as the compression here).
 */
export const PUSHES_PER_WORKER = 2;

interface Opened {
  repo: Repo;
  clusterName: string;
  compression: string;
  codec: WalCodec | undefined;
  storePreparedWal: typeof storePreparedWal;
}

/**
 * The background pusher (spawned by an async archive-push): holds the spool's lock and pushes
 * ready WAL files. archive.processMax worker threads read, checksum and compress them
 * (archive/pushWorker.ts, which loads nothing else); this thread opens the repository once and
 * stores each prepared file (storePreparedWal: the same checks and put as a sync archive-push).
 * Exits when idle; the next archive-push starts a new one.
 * With a target-cache entry for its flags (the archive-push that started it wrote one, with the
 * compressor's codec), the workers start at once and compress the first files while the config
 * and the storage plugin are still loading here.
 */
export async function runArchivePusher(flags: GlobalFlags, walDir: string, logger: Logger): Promise<PusherResult | undefined> {
  let target = readCachedTarget(flags);
  // Started before anything else is loaded.
  let pool = target ? new PreparePool(target.processMax) : undefined;
  try {
    // Loaded while the workers start and the pusher scans for work: nothing waits for it but
    // the first store (and, without a cached codec, the first compression).
    const context = import('../cli/context.js').then(async (m) => ({ ...m, ctx: await m.loadClusterContext(flags) }));
    context.catch(() => undefined);
    if (!target) {
      const { ctx, compressionCodecFor } = await context;
      target = asyncTargetOf(ctx, flags, await compressionCodecFor(ctx));
      writeCachedTarget(flags, target, ctx.loaded.text);
      pool = new PreparePool(target.processMax);
    }
    const known = target;
    const opened: Promise<Opened> = context.then(async ({ ctx, openRepositoryFor }) => {
      const repo = await openRepositoryFor(ctx, flags, logger);
      const compression = String(ctx.loaded.config.compression.plugin);
      const { storePreparedWal } = await import('@strata/core/base');
      return { repo, clusterName: ctx.clusterName, compression, codec: codecOf(repo.compressor(compression)), storePreparedWal };
    });
    opened.catch(() => undefined);
    const spool = new ArchiveSpool(target.spoolDir);
    await spool.create();
    if (!(await spool.lock())) {
      logger.debug({ holder: spool.holder() }, 'another pusher holds the lock');
      return undefined;
    }
    try {
      const active = pool!;
      const push = async (walPath: string): Promise<ArchivePushResult> => {
        // The cached codec is a head start (the workers compress before the config is loaded here);
        // storePreparedWal compresses again should it not be the repository's compressor's.
        const prepared = await active.prepare(walPath, known.codec ?? (await opened).codec);
        const { repo, clusterName, compression, storePreparedWal } = await opened;
        return storePreparedWal({ repo, cluster: clusterName, walPath, compression, prepared, logger });
      };
      const result = await runPusher({
        walDir,
        spool,
        processMax: target.processMax * PUSHES_PER_WORKER,
        idleMs: PUSHER_IDLE_MS,
        push,
        logger,
      });
      logger.info({ ...result }, 'pusher idle, exiting');
      return result;
    } finally {
      await spool.unlock();
    }
  } finally {
    await pool?.close();
  }
}

interface PoolWorker {
  worker: Worker;
  /** Files handed to it and not yet answered. */
  load: number;
}

/** Worker threads preparing WAL files; each file goes to the worker with the fewest in hand. */
class PreparePool {
  private readonly workers: PoolWorker[] = [];
  private readonly pending = new Map<number, { resolve: (p: PreparedWal) => void; reject: (err: unknown) => void; w: PoolWorker }>();
  private nextId = 0;

  constructor(size: number) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL('./pushWorker.js', import.meta.url));
      const entry: PoolWorker = { worker, load: 0 };
      worker.on('message', (reply: WorkerReply) => this.settle(reply));
      worker.on('error', (err) => this.failAll(entry, err));
      worker.on('exit', (code) => this.failAll(entry, new StrataError('Internal', `archive worker exited with code ${code}`)));
      this.workers.push(entry);
    }
  }

  prepare(walPath: string, codec: WalCodec | undefined): Promise<PreparedWal> {
    const w = this.workers.reduce((a, b) => (b.load < a.load ? b : a));
    const id = this.nextId++;
    w.load++;
    return new Promise<PreparedWal>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, w });
      w.worker.postMessage({ id, walPath, ...(codec ? { codec } : {}) } satisfies WorkerRequest);
    });
  }

  private settle(reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    p.w.load--;
    if ('prepared' in reply) {
      // Structured cloning turns the Buffer into a plain Uint8Array over the transferred memory.
      const body = reply.prepared.body;
      p.resolve({ ...reply.prepared, body: Buffer.from(body.buffer, body.byteOffset, body.byteLength) });
    } else {
      const { code, message, hint, context } = reply.error;
      p.reject(new StrataError(code as ErrorCode, message, { hint, context }));
    }
  }

  private failAll(entry: PoolWorker, err: unknown): void {
    for (const [id, p] of this.pending) {
      if (p.w !== entry) continue;
      this.pending.delete(id);
      p.reject(err);
    }
    // A dead worker takes no more files.
    entry.load = Number.POSITIVE_INFINITY;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
