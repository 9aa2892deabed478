/**
 * `@strata/core/base`: plugin contracts, errors, config, the repository facade and WAL archiving —
 * everything but the PostgreSQL client and the backup/restore engines. archive-push runs once per
 * WAL segment, so this entry loads quickly; plugins should import from it too.
 */
export * from './errors/index.js';
export * from './plugins/contract.js';
export * from './logger.js';
export { zstdPlugin, nonePlugin } from './compression/zstd.js';
export * from './config/schema.js';
export * from './config/validate.js';
export { Repository, TAG, type CopyIdentity, type RepoPutOptions, type RetryPolicy } from './repository/Repository.js';
export { keys, describeKey, parseWalObjectName, type KeyInfo } from './repository/keys.js';
export * from './repository/clusterInfo.js';
export * from './postgres/walNames.js';
export * from './wal/archive.js';
export * from './wal/spool.js';
export * from './wal/pusher.js';
export { processStartTime } from './os/processStart.js';
export { resolveStateDir } from './lock/clusterLock.js';
