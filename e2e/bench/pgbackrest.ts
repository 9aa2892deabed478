import type { PgCluster } from '../harness/postgres.js';

/**
 * A pgBackRest config for the bench's stanza "bench": zstd level 3 and process-max=2 like Strata,
 * logs only warnings, and its own repository and lock directory; `extra` adds [global] options.
 */
export function pgbackrestConfig(opts: { repoPath: string; lockPath: string; logPath: string; pg: PgCluster; extra?: string[] }): string {
  const lines = [
    '[global]',
    `repo1-path=${opts.repoPath}`,
    'compress-type=zst',
    'compress-level=3',
    'process-max=2',
    `log-path=${opts.logPath}`,
    'log-level-console=warn',
    'log-level-file=off',
    `lock-path=${opts.lockPath}`,
    ...(opts.extra ?? []),
    '[bench]',
    `pg1-path=${opts.pg.dataDir}`,
    `pg1-port=${opts.pg.port}`,
    `pg1-socket-path=${opts.pg.socketDir}`,
  ];
  return `${lines.join('\n')}\n`;
}
