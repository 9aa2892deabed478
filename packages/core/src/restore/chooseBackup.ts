import { StrataError } from '../errors/index.js';
import { parseLsn } from '../postgres/walNames.js';
import type { Repo } from '../repository/Repo.js';
import { listBackupLabels, readManifest } from '../manifest/catalog.js';
import type { Manifest } from '../manifest/types.js';
import type { RecoveryTarget } from './target.js';

/**
 * Picks the backup to restore: the named one, or the newest that finished before a time or LSN
 * target (recovery can only reach points after the backup's consistency point), else the newest.
 */
export async function chooseBackup(
  repo: Repo,
  cluster: string,
  label: string | undefined,
  target: RecoveryTarget | undefined,
): Promise<Manifest> {
  const labels = await listBackupLabels(repo, cluster);
  if (label !== undefined) {
    if (!labels.includes(label)) {
      throw new StrataError('NotFound', `backup ${label} is not in ${repo.describe()}`, { hint: '"strata info" lists the backups' });
    }
    const m = await readManifest(repo, cluster, label);
    assertReachable(m, target);
    return m;
  }
  if (labels.length === 0) {
    throw new StrataError('NotFound', `no backup of cluster "${cluster}" in ${repo.describe()}`, { hint: 'take one with "strata backup"' });
  }
  for (const l of [...labels].reverse()) {
    const m = await readManifest(repo, cluster, l);
    if (isReachable(m, target)) return m;
  }
  const oldest = await readManifest(repo, cluster, labels[0]!);
  throw new StrataError(
    'NotFound',
    `no backup finished before the recovery target; the oldest (${oldest.label}) finished at ${oldest.stopTime} (LSN ${oldest.stopLsn})`,
    {
      hint: 'choose a later target, or restore a backup from another repository copy',
    },
  );
}

function isReachable(m: Manifest, target: RecoveryTarget | undefined): boolean {
  if (target?.kind === 'time') return new Date(m.stopTime).getTime() <= target.time.getTime();
  if (target?.kind === 'lsn') return parseLsn(m.stopLsn) <= target.lsn;
  return true;
}

function assertReachable(m: Manifest, target: RecoveryTarget | undefined): void {
  if (!isReachable(m, target)) {
    throw new StrataError('Precondition', `backup ${m.label} finished at ${m.stopTime} (LSN ${m.stopLsn}), after the recovery target`, {
      hint: 'pick an older backup with --set, or omit --set to let strata choose',
    });
  }
}
