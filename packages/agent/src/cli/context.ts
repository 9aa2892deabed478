import type { Logger, Repo, Repository } from '@strata/core/base';
import { configPath, loadConfig, selectCluster, type LoadedConfig } from '../config/loadConfig.js';
import type { WalCodec } from '@strata/core/wal/prepare';
import { compressionCodec, openCopies, openCopy, openRepository } from '../plugins/loadPlugins.js';
import type { LogLevel } from './logger.js';

/** The flags every command takes (BaseCommand.baseFlags), as both entry points parse them. */
export interface GlobalFlags {
  config?: string;
  cluster?: string;
  repo?: string;
  'log-level'?: LogLevel;
  /** archive-push only: the spool the sh fast path (bin/strata-archive-push) answered from; checked against the config's. */
  spool?: string;
}

export interface ClusterContext {
  loaded: LoadedConfig;
  clusterName: string;
  cluster: LoadedConfig['config']['clusters'][string];
}

export interface CommandContext extends ClusterContext {
  repo: Repo;
}

/** Config resolution (--config, STRATA_CONFIG, /etc/strata/strata.yaml) and the cluster. */
export async function loadClusterContext(flags: GlobalFlags): Promise<ClusterContext> {
  const loaded = await loadConfig(configPath(flags.config));
  const { name, cluster } = selectCluster(loaded.config, flags.cluster);
  return { loaded, clusterName: name, cluster };
}

/** The cluster and its repository (--repo, default the first configured). */
export async function openContext(flags: GlobalFlags, logger: Logger): Promise<CommandContext> {
  const ctx = await loadClusterContext(flags);
  return { ...ctx, repo: await openRepositoryFor(ctx, flags, logger) };
}

export function openRepositoryFor(ctx: ClusterContext, flags: GlobalFlags, logger: Logger): Promise<Repo> {
  return openRepository(ctx.loaded.config, ctx.loaded.path, ctx.loaded.dir, flags.repo, logger);
}

/** The configured compressor as a codec core runs (async archiving's workers compress with it). */
export function compressionCodecFor(ctx: ClusterContext): Promise<WalCodec | undefined> {
  return compressionCodec(ctx.loaded.config, ctx.loaded.path, ctx.loaded.dir);
}

/** The repositories one by one: the one --repo names, else every configured one. */
export async function openCopiesFor(ctx: ClusterContext, flags: GlobalFlags, logger: Logger): Promise<Repository[]> {
  const { config, path, dir } = ctx.loaded;
  if (flags.repo !== undefined) return [await openCopy(config, path, dir, flags.repo, logger)];
  return openCopies(config, path, dir, logger);
}
