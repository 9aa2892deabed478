import { isStrataError } from '../errors/index.js';
import type { ServerInfo } from '../postgres/connection.js';
import type { Repo } from '../repository/Repo.js';
import { listBackupLabels, readManifest } from '../manifest/catalog.js';
import type { BackupType, Manifest } from '../manifest/types.js';

export type RequestedType = BackupType | 'auto';

export interface BackupPlan {
  type: BackupType;
  parent?: Manifest;
  /** Why the type differs from the one asked for; shown to the user. */
  note?: string;
}

/**
 * Decides the backup type and its parent: incr builds on the newest backup, diff on the newest
 * full. Anything that makes the chain unusable — no full, a damaged parent, another timeline,
 * PostgreSQL version or system — falls back to a full backup, saying why.
 */
export async function planBackup(
  repo: Repo,
  cluster: string,
  requested: RequestedType,
  server: ServerInfo,
  timeline: number,
): Promise<BackupPlan> {
  if (requested === 'full') return { type: 'full' };
  const wanted: BackupType = requested === 'diff' ? 'diff' : 'incr';
  const asked = wanted === 'diff' ? 'a differential' : 'an incremental';
  const full = (why: string): BackupPlan => ({ type: 'full', note: `taking a full backup instead of ${asked}: ${why}` });
  const labels = await listBackupLabels(repo, cluster);
  const candidates = wanted === 'diff' ? labels.filter((l) => !l.includes('_')) : labels;
  const label = candidates.at(-1);
  if (!label) return full('there is no full backup yet');
  let parent: Manifest;
  try {
    parent = await readManifest(repo, cluster, label);
  } catch (err) {
    if (isStrataError(err)) return full(`the newest backup ${label} cannot be read (${err.message})`);
    throw err;
  }
  if (parent.systemIdentifier !== server.systemIdentifier) return full(`backup ${label} is of another system (${parent.systemIdentifier})`);
  if (Math.floor(parent.pgVersionNum / 10000) !== Math.floor(server.versionNum / 10000)) {
    return full(`backup ${label} is of PostgreSQL ${parent.pgVersionNum}, the server runs ${server.versionNum}`);
  }
  if (parent.timeline !== timeline) return full(`the cluster is on timeline ${timeline}, backup ${label} on timeline ${parent.timeline}`);
  if (parent.options.pageSize !== server.blockSize) return full(`backup ${label} used ${parent.options.pageSize}-byte pages`);
  return { type: wanted, parent };
}

/** The label of a new backup taken at `at`: incrementals and differentials name their chain's full. */
export function backupLabel(at: Date, type: BackupType, parent: Manifest | undefined): string {
  const iso = at.toISOString();
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
  if (type === 'full' || !parent) return `${stamp}F`;
  return `${parent.label.split('_')[0]}_${stamp}${type === 'diff' ? 'D' : 'I'}`;
}
