import { Worker } from 'node:worker_threads';
// Light imports only (not @strata/core/base, which loads every schema): the workers do the rest.
import type { ArchivePushResult, Logger } from '@strata/core/base';
import { StrataError, type ErrorCode } from '@strata/core/errors';
import { runPusher, type PusherResult } from '@strata/core/wal/pusher';
import { ArchiveSpool } from '@strata/core/wal/spool';
import type { GlobalFlags } from '../cli/context.js';
import { asyncTargetOf } from './asyncClient.js';
import { readCachedTarget, writeCachedTarget } from './targetCache.js';
import type { WorkerReply, WorkerRequest } from './pushWorker.js';

/** How long the background pusher waits for new ready files before it exits. */
export const PUSHER_IDLE_MS = 10_000;

/**
 * Pushes each worker thread has in flight: one compresses while the other waits for its fsyncs,
 * which take as long as the compression here.
 */
export const PUSHES_PER_WORKER = 2;

/**
 * The background pusher (spawned by an async archive-push): holds the spool's lock, and pushes
 * ready WAL files with archive.processMax worker threads, so that checksumming and compressing
 * run on several cores. Exits when idle; the next archive-push starts a new one.
 * With a target-cache entry for its flags (the archive-push that started it wrote one), it starts
 * its workers at once and never parses the config itself: the workers' own loading is then the
 * whole cold start.
 */
export async function runArchivePusher(flags: GlobalFlags, walDir: string, logger: Logger): Promise<PusherResult | undefined> {
  let target = readCachedTarget(flags);
  // Started before anything else is loaded: the workers' start-up is most of the pusher's.
  let pool = target ? new WorkerPool(target.processMax, flags) : undefined;
  try {
    if (!target) {
      const { loadClusterContext } = await import('../cli/context.js');
      const ctx = await loadClusterContext(flags);
      target = asyncTargetOf(ctx, flags);
      writeCachedTarget(flags, target, ctx.loaded.text);
      pool = new WorkerPool(target.processMax, flags);
    }
    const spool = new ArchiveSpool(target.spoolDir);
    await spool.create();
    if (!(await spool.lock())) {
      logger.debug({ holder: spool.holder() }, 'another pusher holds the lock');
      return undefined;
    }
    try {
      const active = pool!;
      const result = await runPusher({
        walDir,
        spool,
        processMax: target.processMax * PUSHES_PER_WORKER,
        idleMs: PUSHER_IDLE_MS,
        push: (walPath) => active.push(walPath),
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

/** Worker threads, each with its own repository, taking up to PUSHES_PER_WORKER WAL files at a time. */
class WorkerPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly waiting: ((w: Worker) => void)[] = [];
  private nextId = 0;

  constructor(size: number, flags: GlobalFlags) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(new URL('./pushWorker.js', import.meta.url), { workerData: flags });
      this.all.push(w);
    }
    // One slot per push a worker may have in flight; taken from the end, so the workers alternate.
    for (let slot = 0; slot < PUSHES_PER_WORKER; slot++) this.idle.unshift(...this.all);
  }

  async push(walPath: string): Promise<ArchivePushResult> {
    const worker = this.idle.pop() ?? (await new Promise<Worker>((r) => this.waiting.push(r)));
    try {
      return await new Promise<ArchivePushResult>((resolve, reject) => {
        const id = this.nextId++;
        const onMessage = (reply: WorkerReply) => {
          if (reply.id !== id) return;
          cleanup();
          if ('result' in reply) resolve(reply.result);
          else
            reject(
              new StrataError(reply.error.code as ErrorCode, reply.error.message, { hint: reply.error.hint, context: reply.error.context }),
            );
        };
        const onExit = (code: number) => {
          cleanup();
          reject(new StrataError('Internal', `archive worker exited with code ${code}`));
        };
        const cleanup = () => {
          worker.off('message', onMessage);
          worker.off('exit', onExit);
        };
        worker.on('message', onMessage);
        worker.on('exit', onExit);
        worker.postMessage({ id, walPath } satisfies WorkerRequest);
      });
    } finally {
      const next = this.waiting.shift();
      if (next) next(worker);
      else this.idle.push(worker);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}
