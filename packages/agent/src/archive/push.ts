import { archivePush, type ArchivePushResult, type Logger } from '@strata/core/base';
import { loadClusterContext, openRepositoryFor, type GlobalFlags } from '../cli/context.js';
import { configPath } from '../config/configPath.js';
import { asyncTargetOf, pushAsync } from './asyncClient.js';
import { configStamp, writeCachedTarget } from './targetCache.js';

/** archive-push, shared by the oclif command and the fast path (archive/fastPath.ts). */
export async function runArchivePush(flags: GlobalFlags, walPath: string, logger: Logger): Promise<ArchivePushResult> {
  // Stamped before reading: a config changed meanwhile never matches the cached entry.
  const stamp = tryStamp(configPath(flags.config));
  const ctx = await loadClusterContext(flags);
  if (ctx.loaded.config.archive.async) {
    const target = asyncTargetOf(ctx, flags);
    if (stamp) writeCachedTarget(flags, target, stamp);
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

function tryStamp(file: string): ReturnType<typeof configStamp> | undefined {
  try {
    return configStamp(file);
  } catch {
    return undefined;
  }
}
