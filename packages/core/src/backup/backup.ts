import * as fs from 'node:fs/promises';
import { StrataError } from '../errors/index.js';
import type { ClusterConfig, StrataConfig } from '../config/schema.js';
import { PgSession, type ServerInfo } from '../postgres/connection.js';
import { formatLsn, parseLsn, segmentNameForLsn, segmentRange } from '../postgres/walNames.js';
import { keys } from '../repository/keys.js';
import type { Repo } from '../repository/Repo.js';
import { assertSameSystem, readClusterInfo } from '../repository/clusterInfo.js';
import { MANIFEST_FORMAT, type BackupType, type Manifest } from '../manifest/types.js';
import { backupLabel, planBackup, type RequestedType } from './parent.js';
import { PreviousFiles } from './previousFiles.js';
import { PackWriter } from '../blocks/PackWriter.js';
import { BlockMapWriter } from '../blocks/BlockMapWriter.js';
import { copyDataDir, scanTotal } from './copyDataDir.js';
import { BlockPool, defaultProcessMax, type BlockPoolOptions } from '../pipeline/BlockPool.js';
import { rateLimiter } from '../pipeline/RateLimiter.js';
import { pushReadyWal, waitForWal } from './waitForWal.js';
import { noopLogger, type Logger } from '../logger.js';

export interface BackupOptions {
  repo: Repo;
  clusterName: string;
  cluster: ClusterConfig;
  config: StrataConfig;
  /** 'auto': incremental when a usable full exists, else full. */
  type: RequestedType;
  /** Ask for an immediate checkpoint instead of a spread one. */
  startFast: boolean;
  logger?: Logger;
  /** Called as data is read; `totalBytes` is what the scan found (with `estimateTotal`). */
  onProgress?: (p: { files: number; bytes: number; totalBytes?: number }) => void;
  /** Walk PGDATA once before copying to know the total for progress (cheap: one lstat per file). */
  estimateTotal?: boolean;
  /** Worker threads (default: config backup.processMax, else 2 or the cores when fewer). */
  processMax?: number;
  /** Bytes per second for reading PGDATA and writing packs (default: config backup.maxRate). */
  maxRate?: number;
  /** Called once the copy phase has begun (tests use it to interrupt a backup). */
  onCopyStart?: (label: string) => void;
}

export interface BackupResult {
  label: string;
  type: BackupType;
  parent: string | null;
  /** Why the type differs from the one asked for. */
  note?: string;
  startLsn: string;
  stopLsn: string;
  startWal: string;
  stopWal: string;
  files: number;
  bytes: number;
  /** Bytes of files read (a file unchanged since the parent is referenced, not read). */
  bytesRead: number;
  repoBytes: number;
  durationMs: number;
  /**
   * Set when PostgreSQL's archiver is failing (its last attempt failed): the backup stored its own WAL
   * and is restorable, but WAL after it is not being archived (point-in-time recovery past the
   * backup would stop there).
   */
  archiverFailing?: { lastFailedWal: string | null; failedCount: number };
}

export async function runBackup(opts: BackupOptions): Promise<BackupResult> {
  const { repo, clusterName, cluster, config } = opts;
  const log = opts.logger ?? noopLogger;
  const started = Date.now();
  const session = await PgSession.connect(cluster, 'strata backup');
  try {
    const server = await session.serverInfo();
    await checkServer(server, cluster, clusterName);
    const info = await readClusterInfo(repo, clusterName);
    assertSameSystem(info, server.systemIdentifier, repo);
    const compression = String(config.compression.plugin);
    const compressor = repo.compressor(compression);
    const timelineNow = async () =>
      (await session.one<{ timeline_id: number }>('SELECT timeline_id FROM pg_control_checkpoint()')).timeline_id;
    const timeline = await timelineNow();
    const plan = await planBackup(repo, clusterName, opts.type, server, timeline);
    if (plan.note) log.warn({}, plan.note);
    const parent = plan.parent;
    const label = await freeLabel(repo, clusterName, plan.type, parent);

    const startFn = server.major >= 15 ? 'pg_backup_start' : 'pg_start_backup';
    const startArgs = server.major >= 15 ? '$1, $2' : '$1, $2, false';
    log.info({ label, type: plan.type, startFast: opts.startFast }, 'starting backup (checkpoint)');
    const start = await session.one<{ lsn: string }>(`SELECT ${startFn}(${startArgs})::text AS lsn`, [`strata ${label}`, opts.startFast]);
    const startTime = new Date();
    if ((await timelineNow()) !== timeline) {
      throw new StrataError('Precondition', `the cluster switched timelines while the backup started`, { hint: 'run the backup again' });
    }
    const startLsn = parseLsn(start.lsn);
    const startWal = segmentNameForLsn(timeline, startLsn, server.walSegmentSize);
    const databases = await session.query<{ oid: number; name: string }>(
      'SELECT oid::int AS oid, datname AS name FROM pg_database ORDER BY oid',
    );
    const tablespaces = await session.query<{ oid: number; name: string; location: string }>(
      `SELECT oid::int AS oid, spcname AS name, pg_tablespace_location(oid) AS location
         FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid`,
    );

    const maxRate = opts.maxRate ?? config.backup.maxRate;
    const packs = new PackWriter(repo, clusterName, label, config.backup.packSize, rateLimiter(maxRate));
    const blockMaps = new BlockMapWriter(repo, clusterName, label, compression);
    const processMax = opts.processMax ?? config.backup.processMax ?? defaultProcessMax();
    const { files, bytes, bytesRead } = await withBlockPool(
      {
        processMax,
        superBlockSize: config.backup.superBlockSize,
        pageSize: server.blockSize,
        ...(compressor.parallel ?? { codec: 'none', level: 0 }),
      },
      async (pool) => {
        const totalBytes = opts.estimateTotal ? await scanTotal(cluster.pgdata) : undefined;
        opts.onCopyStart?.(label);
        const copied = await copyDataDir({
          pgdata: cluster.pgdata,
          previous: parent ? new PreviousFiles(repo, parent) : undefined,
          copier: {
            packs,
            blockMaps,
            compressor,
            pool,
            pageSize: server.blockSize,
            superBlockSize: config.backup.superBlockSize,
            readRate: rateLimiter(maxRate),
          },
          // Files in flight at once: enough to keep every worker busy on small files.
          lanes: processMax * 2,
          onProgress: opts.onProgress ? (p) => opts.onProgress!({ ...p, totalBytes }) : undefined,
        });
        await packs.close();
        await blockMaps.flush();
        return copied;
      },
    );

    const stopFn = server.major >= 15 ? 'pg_backup_stop(false)' : 'pg_stop_backup(false, false)';
    const stop = await session.one<{ lsn: string; labelfile: string; spcmapfile: string | null }>(
      `SELECT lsn::text AS lsn, labelfile, spcmapfile FROM ${stopFn}`,
    );
    const stopTime = new Date();
    const stopLsn = parseLsn(stop.lsn);
    // The backup-end record lies just before the stop LSN (XLByteToPrevSeg).
    const stopWal = segmentNameForLsn(timeline, stopLsn - 1n, server.walSegmentSize);
    const needed = segmentRange(startWal, stopWal, server.walSegmentSize);
    // Failing now: its last attempt failed, after its last success.
    const archiver = await session.one<{ failing: boolean; wal: string | null; n: string }>(
      `SELECT coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false) AS failing,
              last_failed_wal AS wal, failed_count::text AS n FROM pg_stat_archiver`,
    );
    const archiverFailing = archiver.failing ? { lastFailedWal: archiver.wal, failedCount: Number(archiver.n) } : undefined;
    if (archiverFailing) {
      log.warn(
        { lastFailedWal: archiverFailing.lastFailedWal },
        'archive_command is failing: this backup stores its own WAL, but later WAL is not archived (see pg_stat_archiver)',
      );
    }
    const walPushed = await pushReadyWal({
      repo,
      cluster: clusterName,
      pgdata: cluster.pgdata,
      segments: needed,
      compression,
      logger: log,
    });
    log.info({ label, startWal, stopWal, storedFromPgWal: walPushed }, 'waiting for the WAL this backup needs to be archived');
    await waitForWal(repo, clusterName, needed, config.archive.timeout * 1000);

    const repoBytes = packs.bytesWritten + blockMaps.written.reduce((a, b) => a + b.size, 0);
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      label,
      type: plan.type,
      parent: parent?.label ?? null,
      references: parent ? [...new Set([...(parent.references ?? []), parent.label])].sort() : [],
      cluster: clusterName,
      systemIdentifier: server.systemIdentifier,
      pgVersionNum: server.versionNum,
      timeline,
      walSegmentSize: server.walSegmentSize,
      startLsn: formatLsn(startLsn),
      stopLsn: formatLsn(stopLsn),
      startWal,
      stopWal,
      startTime: startTime.toISOString(),
      stopTime: stopTime.toISOString(),
      backupLabel: stop.labelfile,
      tablespaceMap: stop.spcmapfile && stop.spcmapfile.length > 0 ? stop.spcmapfile : null,
      databases,
      tablespaces,
      options: {
        compression,
        pageSize: server.blockSize,
        superBlockSize: config.backup.superBlockSize,
        pageHash: 'xxh3-64',
        fileHash: 'sha256',
      },
      packs: packs.packs,
      packHashes: packs.hashes,
      blockMaps: blockMaps.written,
      stats: { files: files.filter((f) => f.type === 'file').length, bytes, repoBytes },
      files,
    };
    // The commit point: a backup exists once its manifest does.
    const manifestBytes = await repo.putSealed(keys.manifest(clusterName, label), 'manifest', manifest, compression, {
      ifNoneMatch: true,
    });
    log.info({ label }, 'backup complete');
    return {
      label,
      type: plan.type,
      parent: parent?.label ?? null,
      note: plan.note,
      startLsn: manifest.startLsn,
      stopLsn: manifest.stopLsn,
      startWal,
      stopWal,
      files: manifest.stats.files,
      bytes,
      bytesRead,
      repoBytes: repoBytes + manifestBytes,
      durationMs: Date.now() - started,
      ...(archiverFailing ? { archiverFailing } : {}),
    };
  } finally {
    // Closing the session also aborts a non-exclusive backup that did not reach its stop.
    await session.close();
  }
}

async function checkServer(server: ServerInfo, cluster: ClusterConfig, clusterName: string): Promise<void> {
  if (server.inRecovery) {
    throw new StrataError('Precondition', `cluster "${clusterName}" is in recovery; backups from a standby are not supported yet`, {
      hint: 'run the backup against the primary',
    });
  }
  if (server.archiveMode === 'off') {
    throw new StrataError(
      'Precondition',
      `archive_mode is off on cluster "${clusterName}": a backup without archived WAL cannot be restored`,
      {
        hint: 'set archive_mode = on and archive_command (see "strata init"), then restart PostgreSQL',
      },
    );
  }
  const [real, configured] = await Promise.all([
    fs.realpath(server.dataDirectory).catch(() => server.dataDirectory),
    fs.realpath(cluster.pgdata).catch(() => cluster.pgdata),
  ]);
  if (real !== configured) {
    throw new StrataError(
      'ConfigInvalid',
      `pgdata for cluster "${clusterName}" is ${cluster.pgdata}, but the server at port ${cluster.port} runs on ${server.dataDirectory}`,
      {
        hint: 'fix pgdata or host/port in the config',
      },
    );
  }
}

/** Labels have one-second resolution: never reuse one, even one an interrupted backup left. */
async function freeLabel(repo: Repo, cluster: string, type: BackupType, parent: Manifest | undefined): Promise<string> {
  for (;;) {
    const label = backupLabel(new Date(), type, parent);
    const taken = await repo.listAll(keys.backupDir(cluster, label));
    if (taken.length === 0) return label;
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
  }
}

/** Runs `fn` with a block pool that is closed afterwards, whatever happens. */
export async function withBlockPool<T>(opts: BlockPoolOptions, fn: (pool: BlockPool) => Promise<T>): Promise<T> {
  const pool = new BlockPool(opts);
  try {
    return await fn(pool);
  } finally {
    await pool.close();
  }
}
