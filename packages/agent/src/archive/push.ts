import { archivePush, type ArchivePushResult, type Logger } from '@strata/core/base';
import { StrataError } from '@strata/core/errors';
import { compressionCodecFor, loadClusterContext, openRepositoryFor, type GlobalFlags } from '../cli/context.js';
import { asyncTargetOf, pushAsync } from './asyncClient.js';
import { writeCachedTarget } from './targetCache.js';

/** archive-push, shared by the oclif command and the fast path (archive/fastPath.ts). */
export async function runArchivePush(flags: GlobalFlags, walPath: string, logger: Logger): Promise<ArchivePushResult> {
  const ctx = await loadClusterContext(flags);
  if (ctx.loaded.config.archive.async) {
    const target = asyncTargetOf(ctx, flags, await compressionCodecFor(ctx));
    writeCachedTarget(flags, target, ctx.loaded.text);
    return pushAsync(target, walPath, flags, logger);
  }
  if (flags.spool !== undefined) {
    throw new StrataError('InvalidArgument', '--spool is only for asynchronous archiving, and archive.async is off in the config', {
      hint: "use archive_command = 'strata archive-push %p' (without strata-archive-push and --spool), or set archive.async: true",
    });
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
