import type { RetentionPolicy } from '../config/schema.js';
import { StrataError, isStrataError } from '../errors/index.js';
import { noopLogger, type Logger } from '../logger.js';
import { readManifest } from '../manifest/catalog.js';
import { LABEL_RE } from '../manifest/label.js';
import type { BackupType } from '../manifest/types.js';
import type { ObjectInfo } from '../plugins/contract.js';
import { keys } from '../repository/keys.js';
import type { Repo } from '../repository/Repo.js';
import { planRetention, type BackupDecision, type BackupFacts, type IncompleteFacts, type InterruptedDecision } from './plan.js';

/** Most keys one delete call is given (S3's DeleteObjects limit). */
export const DELETE_BATCH = 1000;

export interface ExpireOptions {
  repo: Repo;
  cluster: string;
  policy: RetentionPolicy;
  /** Report what would be removed; remove nothing. */
  dryRun?: boolean;
  now?: Date;
  logger?: Logger;
}

export interface ExpiredBackup {
  label: string;
  type: BackupType;
  reason: string;
  objects: number;
  bytes: number;
}

export interface RemovedInterrupted {
  label: string;
  reason: string;
  objects: number;
  bytes: number;
}

export interface RemovedWal {
  timeline: number;
  /** Segment names of the oldest and newest file removed. */
  first: string;
  last: string;
  /** Files removed (segments with their .partial and .backup files). */
  count: number;
  bytes: number;
  /** WAL from this segment on is kept; null: the timeline's WAL is gone (its .history file stays). */
  keepFrom: string | null;
}

export interface ExpireResult {
  cluster: string;
  repo: string;
  dryRun: boolean;
  policy: RetentionPolicy;
  /** False when no retention key is set: nothing but interrupted backups is removed. */
  configured: boolean;
  /** Oldest first. */
  expired: ExpiredBackup[];
  interrupted: RemovedInterrupted[];
  /** Interrupted backups left in place because they may still be running. */
  inProgress: InterruptedDecision[];
  wal: RemovedWal[];
  /** Oldest first, each with why it stays. */
  retained: BackupDecision[];
  /** With --dry-run: what would be deleted and freed. */
  objectsDeleted: number;
  bytesFreed: number;
  notes: string[];
}

/**
 * `strata expire`: applies the retention policy. Every expired backup's manifest is deleted
 * before any of its packs or block maps (newest first, so a backup never outlives one it
 * depends on), so a backup stops being visible at once; a run cut short leaves objects that the
 * next run removes as an interrupted backup. Then interrupted backups, then WAL.
 */
export async function runExpire(opts: ExpireOptions): Promise<ExpireResult> {
  const { repo, cluster, policy } = opts;
  const dryRun = opts.dryRun ?? false;
  const log = opts.logger ?? noopLogger;
  const now = opts.now ?? new Date();

  const root = keys.backupRoot(cluster);
  const byLabel = new Map<string, ObjectInfo[]>();
  for (const o of await repo.listAll(root)) {
    const label = o.key.slice(root.length).split('/')[0];
    if (!label) continue;
    const list = byLabel.get(label);
    if (list) list.push(o);
    else byLabel.set(label, [o]);
  }
  const backups: BackupFacts[] = [];
  const incomplete: IncompleteFacts[] = [];
  for (const [label, objects] of byLabel) {
    const manifestKey = keys.manifest(cluster, label);
    if (LABEL_RE.test(label) && objects.some((o) => o.key === manifestKey)) {
      backups.push(await readFacts(repo, cluster, label));
    } else {
      const times = objects.flatMap((o) => (o.mtime ? [o.mtime.getTime()] : []));
      incomplete.push({ label, ...(times.length ? { lastModified: new Date(Math.max(...times)) } : {}) });
    }
  }
  const wal = await repo.listAll(keys.walRoot(cluster));
  const plan = planRetention({ policy, now, backups, incomplete, wal });

  const sizeOf = (label: string) => {
    const objects = byLabel.get(label) ?? [];
    return { objects: objects.length, bytes: objects.reduce((a, o) => a + o.size, 0) };
  };
  const result: ExpireResult = {
    cluster,
    repo: repo.name,
    dryRun,
    policy,
    configured: plan.configured,
    expired: plan.expired.map((d) => ({ ...d, ...sizeOf(d.label) })),
    interrupted: plan.interrupted.map((d) => ({ ...d, ...sizeOf(d.label) })),
    inProgress: plan.inProgress,
    wal: plan.wal.map(({ keys: _keys, ...w }) => w),
    retained: plan.retained,
    objectsDeleted: 0,
    bytesFreed: 0,
    notes: plan.notes,
  };
  result.objectsDeleted =
    result.expired.reduce((a, b) => a + b.objects, 0) +
    result.interrupted.reduce((a, b) => a + b.objects, 0) +
    result.wal.reduce((a, w) => a + w.count, 0);
  result.bytesFreed =
    result.expired.reduce((a, b) => a + b.bytes, 0) +
    result.interrupted.reduce((a, b) => a + b.bytes, 0) +
    result.wal.reduce((a, w) => a + w.bytes, 0);
  if (dryRun) return result;

  // Commit points first: newest first, each backup before the ones it depends on.
  for (const d of [...plan.expired].reverse()) {
    log.info({ label: d.label, reason: d.reason }, 'expiring backup');
    await repo.delete([keys.manifest(cluster, d.label)]);
  }
  for (const d of [...plan.expired, ...plan.interrupted]) {
    const manifestKey = keys.manifest(cluster, d.label);
    await deleteInBatches(
      repo,
      (byLabel.get(d.label) ?? []).map((o) => o.key).filter((k) => k !== manifestKey),
    );
    log.info({ label: d.label }, 'removed backup objects');
  }
  for (const w of plan.wal) {
    log.info({ timeline: w.timeline, first: w.first, last: w.last, count: w.count }, 'removing WAL');
    await deleteInBatches(repo, w.keys);
  }
  return result;
}

async function readFacts(repo: Repo, cluster: string, label: string): Promise<BackupFacts> {
  try {
    const m = await readManifest(repo, cluster, label);
    return {
      label,
      type: m.type,
      parent: m.parent,
      references: m.references ?? [],
      startTime: m.startTime,
      stopTime: m.stopTime,
      timeline: m.timeline,
      startWal: m.startWal,
    };
  } catch (err) {
    if (!isStrataError(err) || err.code !== 'Integrity') throw err;
    // What the damaged backup depends on is unknown: removing anything could break it further.
    throw new StrataError('Integrity', `cannot read the manifest of backup ${label}, so expire removes nothing: ${err.message}`, {
      cause: err,
      context: { ...err.context, label },
      hint: 'restore the manifest from another copy of the repository, or run "strata verify"',
    });
  }
}

async function deleteInBatches(repo: Repo, keyList: string[]): Promise<void> {
  for (let i = 0; i < keyList.length; i += DELETE_BATCH) await repo.delete(keyList.slice(i, i + DELETE_BATCH));
}
