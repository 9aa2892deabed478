import { parentPort, workerData } from 'node:worker_threads';
import { archivePush, toStrataError, type ArchivePushResult, type Repo } from '@strata/core/base';
import { loadClusterContext, openRepositoryFor, type ClusterContext, type GlobalFlags } from '../cli/context.js';
import { createLogger } from '../cli/logger.js';

export interface WorkerRequest {
  id: number;
  walPath: string;
}

export type WorkerReply =
  | { id: number; result: ArchivePushResult }
  | { id: number; error: { code: string; message: string; hint?: string; context: Record<string, string | number | boolean | undefined> } };

/** One of the background pusher's workers (archive/pusher.ts): archivePush, one file at a time. */
const flags = workerData as GlobalFlags;
const logger = createLogger(flags['log-level'] ?? 'warn', 'archive-push-async');
// Opened once, while the pusher scans for work.
const opened: Promise<{ ctx: ClusterContext; repo: Repo }> = loadClusterContext(flags).then(async (ctx) => ({
  ctx,
  repo: await openRepositoryFor(ctx, flags, logger),
}));
opened.catch(() => undefined);

parentPort!.on('message', (req: WorkerRequest) => {
  opened
    .then(({ ctx, repo }) =>
      archivePush({
        repo,
        cluster: ctx.clusterName,
        walPath: req.walPath,
        compression: String(ctx.loaded.config.compression.plugin),
        logger,
      }),
    )
    .then(
      (result) => parentPort!.postMessage({ id: req.id, result } satisfies WorkerReply),
      (err: unknown) => {
        const e = toStrataError(err);
        parentPort!.postMessage({
          id: req.id,
          error: { code: e.code, message: e.message, hint: e.hint, context: e.context },
        } satisfies WorkerReply);
      },
    );
});
