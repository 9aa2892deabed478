import * as fs from 'node:fs/promises';
import { StrataError } from '../errors/index.js';
import type { ClusterConfig, StrataConfig } from '../config/schema.js';
import { PgSession, type ServerInfo } from '../postgres/connection.js';
import { formatLsn, parseLsn, segmentNameForLsn, segmentRange } from '../postgres/walNames.js';
import { keys } from '../repository/keys.js';
import type { Repository } from '../repository/Repository.js';
import { assertSameSystem, readClusterInfo } from '../repository/clusterInfo.js';
import { MANIFEST_FORMAT, type BackupType, type Manifest, type ManifestFile } from '../manifest/types.js';
import { backupLabel, planBackup, type RequestedType } from './parent.js';
import { PreviousFiles } from './previousFiles.js';
import { PackWriter } from '../blocks/PackWriter.js';
import { BlockMapWriter } from '../blocks/BlockMapWriter.js';
import { scanDataDir } from './scan.js';
import { copyFile } from './fileCopier.js';
import { waitForWal } from './waitForWal.js';
import { noopLogger, type Logger } from '../logger.js';

export interface BackupOptions {
  repo: Repository;
  clusterName: string;
  cluster: ClusterConfig;
  config: StrataConfig;
  /** 'auto': incremental when a usable full exists, else full. */
  type: RequestedType;
  /** Ask for an immediate checkpoint instead of a spread one. */
  startFast: boolean;
  logger?: Logger;
  onProgress?: (p: { files: number; bytes: number; totalBytes?: number }) => void;
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

    const packs = new PackWriter(repo, clusterName, label, config.backup.packSize);
    const blockMaps = new BlockMapWriter(repo, clusterName, label, compression);
    const files: ManifestFile[] = [];
    let bytes = 0;
    let bytesRead = 0;
    const copier = {
      packs,
      blockMaps,
      compressor,
      pageSize: server.blockSize,
      superBlockSize: config.backup.superBlockSize,
      readBuffer: Buffer.allocUnsafe(config.backup.superBlockSize),
      changedBuffer: Buffer.allocUnsafe(config.backup.superBlockSize),
      onBytes: (n: number) => {
        bytesRead += n;
      },
    };
    const previous = parent ? new PreviousFiles(repo, parent) : undefined;
    opts.onCopyStart?.(label);
    for await (const entry of scanDataDir(cluster.pgdata)) {
      const base = {
        path: entry.path,
        mode: entry.stat.mode & 0o7777,
        uid: entry.stat.uid,
        gid: entry.stat.gid,
        mtime: Math.floor(entry.stat.mtimeMs),
      };
      if (entry.type === 'dir') files.push({ ...base, type: 'dir' });
      else if (entry.type === 'link') files.push({ ...base, type: 'link', target: entry.target });
      else {
        const unchanged = previous?.unchanged(entry);
        const file = unchanged ? { ...unchanged, ...base } : await copyFile(entry, copier, await previous?.pages(entry.path));
        if (file) {
          files.push(file);
          bytes += file.size ?? 0;
        }
        opts.onProgress?.({ files: files.length, bytes });
      }
    }
    await packs.close();
    await blockMaps.flush();

    const stopFn = server.major >= 15 ? 'pg_backup_stop(false)' : 'pg_stop_backup(false, false)';
    const stop = await session.one<{ lsn: string; labelfile: string; spcmapfile: string | null }>(
      `SELECT lsn::text AS lsn, labelfile, spcmapfile FROM ${stopFn}`,
    );
    const stopTime = new Date();
    const stopLsn = parseLsn(stop.lsn);
    // The backup-end record lies just before the stop LSN (XLByteToPrevSeg).
    const stopWal = segmentNameForLsn(timeline, stopLsn - 1n, server.walSegmentSize);
    log.info({ label, startWal, stopWal }, 'waiting for the WAL this backup needs to be archived');
    await waitForWal(repo, clusterName, segmentRange(startWal, stopWal, server.walSegmentSize), config.archive.timeout * 1000);

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
async function freeLabel(repo: Repository, cluster: string, type: BackupType, parent: Manifest | undefined): Promise<string> {
  for (;;) {
    const label = backupLabel(new Date(), type, parent);
    const taken = await repo.listAll(keys.backupDir(cluster, label));
    if (taken.length === 0) return label;
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
  }
}
