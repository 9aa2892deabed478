import { Worker } from 'node:worker_threads';
import {
  ArchiveSpool,
  runPusher,
  StrataError,
  type ArchivePushResult,
  type ErrorCode,
  type Logger,
  type PusherResult,
} from '@strata/core/base';
import { loadClusterContext, type GlobalFlags } from '../cli/context.js';
import { asyncTargetOf } from './asyncClient.js';
import type { WorkerReply, WorkerRequest } from './pushWorker.js';

/** How long the background pusher waits for new ready files before it exits. */
export const PUSHER_IDLE_MS = 10_000;

/**
 * The background pusher (spawned by an async archive-push): holds the spool's lock, and pushes
 * ready WAL files with archive.processMax worker threads, so that checksumming and compressing
 * run on several cores. Exits when idle; the next archive-push starts a new one.
 */
export async function runArchivePusher(flags: GlobalFlags, walDir: string, logger: Logger): Promise<PusherResult | undefined> {
  const ctx = await loadClusterContext(flags);
  const spool = new ArchiveSpool(asyncTargetOf(ctx, flags).spoolDir);
  await spool.create();
  if (!(await spool.lock())) {
    logger.debug({ holder: spool.holder() }, 'another pusher holds the lock');
    return undefined;
  }
  const pool = new WorkerPool(ctx.loaded.config.archive.processMax, flags);
  try {
    const result = await runPusher({
      walDir,
      spool,
      processMax: ctx.loaded.config.archive.processMax,
      idleMs: PUSHER_IDLE_MS,
      push: (walPath) => pool.push(walPath),
      logger,
    });
    logger.info({ ...result }, 'pusher idle, exiting');
    return result;
  } finally {
    await pool.close();
    await spool.unlock();
  }
}

/** Worker threads, each with its own repository, taking one WAL file at a time. */
class WorkerPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly waiting: ((w: Worker) => void)[] = [];
  private nextId = 0;

  constructor(size: number, flags: GlobalFlags) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(new URL('./pushWorker.js', import.meta.url), { workerData: flags });
      this.all.push(w);
      this.idle.push(w);
    }
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
