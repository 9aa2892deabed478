import type { Repo } from '../repository/Repo.js';
import { keys, parseWalObjectName } from '../repository/keys.js';
import { listBackupLabels, listIncompleteLabels, readManifest } from '../manifest/catalog.js';
import { SEGMENT_RE } from '../postgres/walNames.js';
import { latestRehearsal } from '../rehearsal/rehearsalStore.js';
import type { RehearsalResult } from '../rehearsal/types.js';

export interface BackupSummary {
  label: string;
  type: string;
  parent: string | null;
  timeline: number;
  startTime: string;
  stopTime: string;
  startLsn: string;
  stopLsn: string;
  startWal: string;
  stopWal: string;
  /** Bytes of the data directory the backup covers. */
  size: number;
  /** Bytes this backup stored in the repository (packs + block maps). */
  repoSize: number;
  files: number;
  pgVersionNum: number;
}

export interface WalRange {
  timeline: number;
  first: string;
  last: string;
  segments: number;
  bytes: number;
}

export interface ClusterReport {
  cluster: string;
  repo: string;
  backups: BackupSummary[];
  /** Interrupted backups: objects without a manifest, never used by restore. */
  incomplete: string[];
  wal: WalRange[];
  histories: string[];
  /** The newest restore rehearsal (`strata restore-test`), if any. */
  lastRehearsal?: RehearsalResult;
}

export async function clusterReport(repo: Repo, cluster: string): Promise<ClusterReport> {
  const backups: BackupSummary[] = [];
  for (const label of await listBackupLabels(repo, cluster)) {
    const m = await readManifest(repo, cluster, label);
    backups.push({
      label,
      type: m.type,
      parent: m.parent,
      timeline: m.timeline,
      startTime: m.startTime,
      stopTime: m.stopTime,
      startLsn: m.startLsn,
      stopLsn: m.stopLsn,
      startWal: m.startWal,
      stopWal: m.stopWal,
      size: m.stats.bytes,
      repoSize: m.stats.repoBytes,
      files: m.stats.files,
      pgVersionNum: m.pgVersionNum,
    });
  }
  const ranges = new Map<number, WalRange>();
  const histories: string[] = [];
  for await (const o of repo.list(keys.walRoot(cluster))) {
    const parsed = parseWalObjectName(o.key.slice(o.key.lastIndexOf('/') + 1));
    if (!parsed) continue;
    if (parsed.walName.endsWith('.history')) histories.push(parsed.walName);
    if (!SEGMENT_RE.test(parsed.walName)) continue;
    const tli = parseInt(parsed.walName.slice(0, 8), 16);
    const r = ranges.get(tli);
    if (!r) ranges.set(tli, { timeline: tli, first: parsed.walName, last: parsed.walName, segments: 1, bytes: o.size });
    else {
      if (parsed.walName < r.first) r.first = parsed.walName;
      if (parsed.walName > r.last) r.last = parsed.walName;
      r.segments++;
      r.bytes += o.size;
    }
  }
  return {
    cluster,
    repo: repo.name,
    backups,
    incomplete: await listIncompleteLabels(repo, cluster),
    wal: [...ranges.values()].sort((a, b) => a.timeline - b.timeline),
    histories: histories.sort(),
    lastRehearsal: await latestRehearsal(repo, cluster),
  };
}
