import { StrataError, isStrataError } from '../errors/index.js';
import { keys } from './keys.js';
import type { Repo } from './Repo.js';

/** What `strata init` records about the cluster a repository stanza belongs to. */
export interface ClusterInfo {
  format: 1;
  cluster: string;
  systemIdentifier: string;
  pgVersionNum: number;
  walSegmentSize: number;
  createdAt: string;
}

export async function readClusterInfo(repo: Repo, cluster: string): Promise<ClusterInfo> {
  try {
    return await repo.readSealed<ClusterInfo>(keys.clusterInfo(cluster), 'cluster');
  } catch (err) {
    if (isStrataError(err) && err.code === 'NotFound') {
      throw new StrataError('NotFound', `cluster "${cluster}" is not initialised in ${repo.describe()}`, {
        cause: err,
        hint: `run "strata init --cluster ${cluster}" first`,
      });
    }
    throw err;
  }
}

/** Writes the cluster's identity once; a second init with the same identity is a no-op. */
export async function writeClusterInfo(repo: Repo, info: ClusterInfo, compression: string): Promise<'created' | 'exists'> {
  try {
    await repo.putSealed(keys.clusterInfo(info.cluster), 'cluster', info, compression, { ifNoneMatch: true });
    return 'created';
  } catch (err) {
    if (!isStrataError(err) || err.code !== 'AlreadyExists') throw err;
  }
  const existing = await readClusterInfo(repo, info.cluster);
  assertSameSystem(existing, info.systemIdentifier, repo);
  return 'exists';
}

export function assertSameSystem(info: ClusterInfo, systemIdentifier: string, repo: Repo): void {
  if (info.systemIdentifier !== systemIdentifier) {
    throw new StrataError(
      'Precondition',
      `${repo.describe()} holds cluster "${info.cluster}" with system identifier ${info.systemIdentifier}, but this PostgreSQL cluster has ${systemIdentifier}`,
      { hint: 'each PostgreSQL cluster needs its own cluster name in the config; check that pgdata/port point to the right cluster' },
    );
  }
}
