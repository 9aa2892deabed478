import type { ClusterConfig } from '../config/schema.js';
import { PgSession } from '../postgres/connection.js';
import type { Repo } from './Repo.js';
import { writeClusterInfo } from './clusterInfo.js';

export interface InitResult {
  cluster: string;
  repo: string;
  status: 'created' | 'exists';
  systemIdentifier: string;
  pgVersionNum: number;
  /** Settings to change, with the value to set; empty when archiving is ready. */
  settingsToFix: { name: string; current: string; wanted: string; restart: boolean }[];
}

/** Records the cluster's identity in the repository and says which settings archiving still needs. */
export async function initCluster(
  repo: Repo,
  clusterName: string,
  cluster: ClusterConfig,
  compression: string,
  archiveCommand: string,
): Promise<InitResult> {
  const session = await PgSession.connect(cluster, 'strata init');
  try {
    const server = await session.serverInfo();
    const status = await writeClusterInfo(
      repo,
      {
        format: 1,
        cluster: clusterName,
        systemIdentifier: server.systemIdentifier,
        pgVersionNum: server.versionNum,
        walSegmentSize: server.walSegmentSize,
        createdAt: new Date().toISOString(),
      },
      compression,
    );
    const settingsToFix: InitResult['settingsToFix'] = [];
    if (!['replica', 'logical'].includes(server.walLevel))
      settingsToFix.push({ name: 'wal_level', current: server.walLevel, wanted: 'replica', restart: true });
    if (!['on', 'always'].includes(server.archiveMode))
      settingsToFix.push({ name: 'archive_mode', current: server.archiveMode, wanted: 'on', restart: true });
    if (!/\barchive-push\b/.test(server.archiveCommand))
      settingsToFix.push({ name: 'archive_command', current: server.archiveCommand, wanted: archiveCommand, restart: false });
    return {
      cluster: clusterName,
      repo: repo.name,
      status,
      systemIdentifier: server.systemIdentifier,
      pgVersionNum: server.versionNum,
      settingsToFix,
    };
  } finally {
    await session.close();
  }
}
