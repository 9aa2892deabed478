import { archivePush, type ArchivePushResult, type Logger } from '@strata/core/base';
import { loadClusterContext, openRepositoryFor, type GlobalFlags } from '../cli/context.js';
import { asyncTargetOf, pushAsync } from './asyncClient.js';
import { writeCachedTarget } from './targetCache.js';

/** archive-push, shared by the oclif command and the fast path (archive/fastPath.ts). */
export async function runArchivePush(flags: GlobalFlags, walPath: string, logger: Logger): Promise<ArchivePushResult> {
  const ctx = await loadClusterContext(flags);
  if (ctx.loaded.config.archive.async) {
    const target = asyncTargetOf(ctx, flags);
    writeCachedTarget(flags, target, ctx.loaded.text);
    return pushAsync(target, walPath, flags, logger);
  }
  const repo = await openRepositoryFor(ctx, flags, logger);
  const result = await archivePush({
    repo,
    cluster: ctx.clusterName,
    walPath,
    compression: String(ctx.loaded.config.compression.plugin),
    logger,
  });
  logger.info({ wal: result.walName, stored: result.storedBytes, again: result.alreadyArchived }, 'archived');
  return result;
}
