import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { ClusterConfig, StrataConfig } from '../config/schema.js';
import { PgSession } from '../postgres/connection.js';
import { TAG, type Repository } from '../repository/Repository.js';
import { keys } from '../repository/keys.js';
import type { MissQueue } from '../repository/MissQueue.js';
import { findWalObjects } from '../wal/archive.js';
import { readManifest } from '../manifest/catalog.js';
import { missingIn, takeInventory, wantedOf } from './inventory.js';

/** The rule: 3 copies (the live cluster is one), 2 kinds of media, 1 copy offsite. */
export const RULE_321 = { copies: 3, media: 2, offsite: 1 } as const;

export interface CopyReport {
  repo: string;
  media?: string;
  site?: string;
  reachable: boolean;
  error?: string;
  backups: number;
  walFiles: number;
  /** Holds every committed backup and WAL file the other copies hold. */
  level: boolean;
  /** Counted toward 3-2-1: reachable, level, and holding at least one backup. */
  counted: boolean;
  lag: { backups: number; walFiles: number; objects: number; missingBackups: string[]; missingWal: string[] };
  /** Writes this copy missed that wait in the local replication queue. */
  queued: number;
}

export interface CheckReport {
  cluster: string;
  ok: boolean;
  rule321: boolean;
  /** Copies holding the data: the live cluster plus every counted repository. */
  copies: number;
  mediaKinds: string[];
  offsiteCopies: number;
  repositories: CopyReport[];
  newestBackup: { label: string; stopTime: string; ageHours: number } | null;
  archive: { checked: boolean; ok: boolean; segment?: string; seconds?: number; missingIn?: string[]; error?: string };
  pgWal: { readyFiles: number; oldestReadyAgeSeconds: number | null; bytes: number } | null;
  problems: string[];
}

export interface CheckOptions {
  clusterName: string;
  cluster: ClusterConfig;
  config: StrataConfig;
  copies: readonly Repository[];
  queue?: MissQueue;
  /** Force a WAL switch and wait for the segment in every copy (needs a primary). */
  archiveCheck: boolean;
  /** Overrides config check.maxBackupAgeHours. */
  maxBackupAgeHours?: number;
}

/**
 * The 3-2-1 verdict and each copy's lag, counted from what each repository holds (a listing of
 * each), plus archiving health and the newest backup's age. `ok` is false when any check fails;
 * `problems` says which.
 */
export async function runCheck(opts: CheckOptions): Promise<CheckReport> {
  const { clusterName: cluster, config } = opts;
  const problems: string[] = [];
  const inventories = await takeInventory(opts.copies, cluster);
  const reachable = inventories.filter((i) => i.objects);
  const wanted = wantedOf(reachable);
  const repositories: CopyReport[] = [];
  for (const inv of inventories) {
    const conf = config.repos.find((r) => r.name === inv.repo.name);
    const identity = inv.objects ? await storedIdentity(inv.repo, cluster, [...wanted.backups.keys()].at(-1)) : {};
    const report: CopyReport = {
      repo: inv.repo.name,
      media: identity.media ?? conf?.media ?? inv.repo.identity.media,
      site: identity.site ?? conf?.site ?? inv.repo.identity.site,
      reachable: inv.objects !== undefined,
      backups: 0,
      walFiles: 0,
      level: false,
      counted: false,
      lag: { backups: 0, walFiles: 0, objects: 0, missingBackups: [], missingWal: [] },
      queued: opts.queue ? (await opts.queue.pending(inv.repo.name)).length : 0,
    };
    if (inv.error) {
      report.error = inv.error.message;
      problems.push(`repository "${inv.repo.name}" is unreachable: ${inv.error.message}`);
    } else {
      const missing = missingIn(inv, wanted);
      report.backups = [...wanted.backups.keys()].filter((l) => inv.objects!.has(keys.manifest(cluster, l))).length;
      report.walFiles = wanted.loose.filter((k) => k.includes('/wal/') && inv.objects!.has(k)).length;
      report.lag = {
        backups: missing.backups.length,
        walFiles: missing.wal.length,
        objects: missing.objects.length,
        missingBackups: missing.backups,
        missingWal: missing.wal.slice(0, 20).map((k) => k.slice(k.lastIndexOf('/') + 1)),
      };
      report.level = missing.objects.length === 0;
      report.counted = report.level && report.backups > 0;
      if (!report.level) {
        problems.push(
          `repository "${inv.repo.name}" lags: ${missing.backups.length} backup(s) and ${missing.wal.length} WAL file(s) missing (run "strata replicate")`,
        );
      }
    }
    repositories.push(report);
  }

  // The live cluster is copy 1: on disk, on site.
  const counted = repositories.filter((r) => r.counted);
  const copies = 1 + counted.length;
  const mediaKinds = [...new Set(['disk', ...counted.map((r) => r.media ?? 'unknown')])].sort();
  const offsiteCopies = counted.filter((r) => r.site === 'offsite').length;
  const rule321 = copies >= RULE_321.copies && mediaKinds.length >= RULE_321.media && offsiteCopies >= RULE_321.offsite;
  if (!rule321) {
    problems.push(
      `3-2-1 rule not met: ${copies} copies (need ${RULE_321.copies}), ${mediaKinds.length} kinds of media (need ${RULE_321.media}), ${offsiteCopies} offsite (need ${RULE_321.offsite})`,
    );
  }

  let newestBackup: CheckReport['newestBackup'] = null;
  let ageHours = 0;
  const newest = [...wanted.backups.keys()].at(-1);
  if (newest) {
    const holder = reachable.find((i) => i.objects!.has(keys.manifest(cluster, newest)))!.repo;
    const m = await readManifest(holder, cluster, newest);
    ageHours = (Date.now() - Date.parse(m.stopTime)) / 3_600_000;
    newestBackup = { label: newest, stopTime: m.stopTime, ageHours: Math.round(ageHours * 100) / 100 };
  }
  const maxAge = opts.maxBackupAgeHours ?? config.check.maxBackupAgeHours;
  if (!newestBackup) problems.push(`cluster "${cluster}" has no backup in any repository`);
  else if (ageHours > maxAge)
    problems.push(`the newest backup ${newestBackup.label} is ${newestBackup.ageHours} h old (limit ${maxAge} h)`);

  const pgWal = await readPgWal(opts.cluster.pgdata).catch(() => null);
  if (pgWal && pgWal.readyFiles > config.check.maxReadyWal) {
    problems.push(
      `${pgWal.readyFiles} WAL files wait to be archived in pg_wal (limit ${config.check.maxReadyWal}): archiving is falling behind`,
    );
  }

  const archive = opts.archiveCheck
    ? await archiveHealth(
        opts,
        reachable.map((i) => i.repo),
      )
    : { checked: false, ok: true };
  if (opts.archiveCheck && !archive.ok) problems.push(`archiving check failed: ${archive.error}`);
  for (const r of repositories) if (!r.reachable && archive.checked) archive.missingIn = [...(archive.missingIn ?? []), r.repo];

  return {
    cluster,
    ok: problems.length === 0,
    rule321,
    copies,
    mediaKinds,
    offsiteCopies,
    repositories,
    newestBackup,
    archive,
    pgWal,
    problems,
  };
}

/** Media and site as the copy's own objects are tagged (what it actually holds), when it keeps tags. */
async function storedIdentity(repo: Repository, cluster: string, label: string | undefined): Promise<{ media?: string; site?: string }> {
  if (!label || !repo.capabilities.tags) return {};
  try {
    const tags = (await repo.head(keys.manifest(cluster, label)))?.tags ?? {};
    return { media: tags[TAG.media], site: tags[TAG.site] };
  } catch {
    return {};
  }
}

/** Switches WAL and waits until the finished segment is in every reachable copy. */
async function archiveHealth(opts: CheckOptions, copies: Repository[]): Promise<CheckReport['archive']> {
  const started = Date.now();
  let session: PgSession | undefined;
  try {
    session = await PgSession.connect(opts.cluster, 'strata check');
    const { rec } = await session.one<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
    if (rec) return { checked: false, ok: true, error: 'the cluster is a standby: no WAL switch' };
    const { seg } = await session.one<{ seg: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS seg');
    const deadline = started + opts.config.check.archiveTimeout * 1000;
    let pending = [...copies];
    while (pending.length) {
      const found = await Promise.all(
        pending.map(async (c) => (await findWalObjects(c, opts.clusterName, seg).catch(() => [])).length > 0),
      );
      pending = pending.filter((_, i) => !found[i]);
      if (!pending.length) break;
      if (Date.now() > deadline) {
        return {
          checked: true,
          ok: false,
          segment: seg,
          missingIn: pending.map((c) => c.name),
          error: `WAL segment ${seg} did not reach ${pending.map((c) => `"${c.name}"`).join(', ')} within ${opts.config.check.archiveTimeout} s (check archive_command and pg_stat_archiver)`,
        };
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return { checked: true, ok: true, segment: seg, seconds: Math.round((Date.now() - started) / 100) / 10 };
  } catch (err) {
    return { checked: true, ok: false, error: (err as Error).message };
  } finally {
    await session?.close();
  }
}

/** pg_wal as seen on this host: WAL files waiting for archive_command, and its size. */
async function readPgWal(pgdata: string): Promise<NonNullable<CheckReport['pgWal']>> {
  const walDir = path.join(pgdata, 'pg_wal');
  const status = path.join(walDir, 'archive_status');
  let readyFiles = 0;
  let oldest: number | null = null;
  for (const name of await fs.readdir(status)) {
    if (!name.endsWith('.ready')) continue;
    readyFiles++;
    const { mtimeMs } = await fs.stat(path.join(status, name)).catch(() => ({ mtimeMs: Date.now() }));
    oldest = oldest === null ? mtimeMs : Math.min(oldest, mtimeMs);
  }
  let bytes = 0;
  for (const entry of await fs.readdir(walDir, { withFileTypes: true })) {
    if (entry.isFile()) bytes += (await fs.stat(path.join(walDir, entry.name)).catch(() => ({ size: 0 }))).size;
  }
  return { readyFiles, oldestReadyAgeSeconds: oldest === null ? null : Math.round((Date.now() - oldest) / 1000), bytes };
}
