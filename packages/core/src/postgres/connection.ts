// Loaded when a command connects: commands that never do (restore, info, archive-get) skip ~50 ms.
import type pg from 'pg';
import { StrataError } from '../errors/index.js';
import type { ClusterConfig } from '../config/schema.js';

export interface ServerInfo {
  versionNum: number;
  /** Major version: 15, 16, ... (9.6 reports 9). */
  major: number;
  systemIdentifier: string;
  walSegmentSize: number;
  blockSize: number;
  dataDirectory: string;
  inRecovery: boolean;
  dataChecksums: boolean;
  walLevel: string;
  archiveMode: string;
  archiveCommand: string;
}

/** A session with the cluster; the backup engine keeps one open from start to stop. */
export class PgSession {
  private constructor(private readonly client: pg.Client) {}

  static async connect(cluster: ClusterConfig, applicationName = 'strata'): Promise<PgSession> {
    const { default: pgModule } = await import('pg');
    const client = new pgModule.Client({
      host: cluster.host,
      port: cluster.port,
      user: cluster.user,
      database: cluster.database,
      application_name: applicationName,
      connectionTimeoutMillis: 15000,
    });
    // A dropped connection must not crash the process through an unhandled 'error' event.
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      throw new StrataError(
        'PostgresError',
        `cannot connect to PostgreSQL at ${cluster.host}:${cluster.port} as ${cluster.user}: ${(err as Error).message}`,
        { cause: err, hint: 'check that the cluster runs and that host/port/user in the config are right' },
      );
    }
    return new PgSession(client);
  }

  async query<T extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    try {
      const res = await this.client.query(sql, params);
      return res.rows as T[];
    } catch (err) {
      throw new StrataError('PostgresError', `PostgreSQL: ${(err as Error).message}`, { cause: err, context: { sql: sql.slice(0, 80) } });
    }
  }

  async one<T extends Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T> {
    const rows = await this.query<T>(sql, params);
    if (!rows[0]) throw new StrataError('PostgresError', `query returned no row: ${sql.slice(0, 80)}`);
    return rows[0];
  }

  async serverInfo(): Promise<ServerInfo> {
    const r = await this.one<Record<string, string | boolean>>(
      `SELECT current_setting('server_version_num') AS version_num,
              (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
              current_setting('wal_segment_size') AS wal_segment_size,
              current_setting('block_size') AS block_size,
              current_setting('data_directory') AS data_directory,
              pg_is_in_recovery() AS in_recovery,
              current_setting('data_checksums') AS data_checksums,
              current_setting('wal_level') AS wal_level,
              current_setting('archive_mode') AS archive_mode,
              current_setting('archive_command') AS archive_command`,
    );
    const versionNum = Number(r.version_num);
    return {
      versionNum,
      major: versionNum >= 100000 ? Math.floor(versionNum / 10000) : Math.floor(versionNum / 10000),
      systemIdentifier: String(r.sysid),
      walSegmentSize: parseSize(String(r.wal_segment_size)),
      blockSize: Number(r.block_size),
      dataDirectory: String(r.data_directory),
      inRecovery: r.in_recovery === true,
      dataChecksums: r.data_checksums === 'on',
      walLevel: String(r.wal_level),
      archiveMode: String(r.archive_mode),
      archiveCommand: String(r.archive_command),
    };
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}

/** Parses PostgreSQL's size display ("16MB", "8kB", "16777216"). */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*(B|kB|MB|GB)?$/.exec(text.trim());
  if (!m) throw new StrataError('PostgresError', `unexpected size setting "${text}"`);
  const mult = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[m[2] ?? 'B'] ?? 1;
  return Number(m[1]) * mult;
}
