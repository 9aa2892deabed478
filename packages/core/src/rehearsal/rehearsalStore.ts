import type { Repo } from '../repository/Repo.js';
import { keys } from '../repository/keys.js';
import type { RehearsalResult } from './types.js';

export const REHEARSAL_KIND = 'rehearsal';

/** A sortable id from the rehearsal's start: YYYYMMDD-HHMMSSmmm (UTC). */
export function rehearsalId(at: Date): string {
  const s = at.toISOString();
  return `${s.slice(0, 4)}${s.slice(5, 7)}${s.slice(8, 10)}-${s.slice(11, 13)}${s.slice(14, 16)}${s.slice(17, 19)}${s.slice(20, 23)}`;
}

/** Stores a rehearsal's result as a write-once sealed object. */
export async function storeRehearsal(repo: Repo, result: RehearsalResult, compression: string): Promise<string> {
  const key = keys.rehearsal(result.cluster, rehearsalId(new Date(result.startedAt)));
  await repo.putSealed(key, REHEARSAL_KIND, result, compression, { ifNoneMatch: true });
  return key;
}

/** The newest stored rehearsal of a cluster, if any. */
export async function latestRehearsal(repo: Repo, cluster: string): Promise<RehearsalResult | undefined> {
  const objs = await repo.listAll(keys.rehearsalRoot(cluster));
  const newest = objs
    .map((o) => o.key)
    .sort()
    .pop();
  return newest ? repo.readSealed<RehearsalResult>(newest, REHEARSAL_KIND) : undefined;
}
