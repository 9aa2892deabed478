import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import { PgCluster, chownToPostgres, freePort, makeScratchDir, type PgVersion } from '../harness/postgres.js';
import { runStrata, strataCommandLine, writeStrataConfig, type StrataResult } from '../harness/strata.js';

export interface StrataClusterOptions {
  version: PgVersion;
  /** Extra keys merged into the config's backup section. */
  backup?: Record<string, number>;
  /** Data checksums (initdb -k); default on. */
  checksums?: boolean;
  /** The config's repos (default: one fs repository in the scratch directory). */
  repos?: Record<string, unknown>[];
  /** Extra keys merged into the config's archive section (e.g. async archiving). */
  archive?: Record<string, unknown>;
  /** Extra top-level config keys (e.g. minCopies). */
  extra?: Record<string, unknown>;
}

/**
 * A PostgreSQL cluster archiving with Strata into a filesystem repository, initialised with
 * `strata init`: what a DBA has after following the README.
 */
export class StrataCluster {
  private constructor(
    readonly pg: PgCluster,
    readonly scratch: string,
    readonly configPath: string,
    readonly repoDir: string,
  ) {}

  static async create(opts: StrataClusterOptions): Promise<StrataCluster> {
    const scratch = makeScratchDir(`strata-e2e-pg${opts.version}-`).dir;
    const configPath = path.join(scratch, 'strata.yaml');
    const repoDir = path.join(scratch, 'repo');
    const pg = await PgCluster.init({
      version: opts.version,
      checksums: opts.checksums ?? true,
      settings: {
        wal_level: 'replica',
        archive_mode: 'on',
        archive_command: `${strataCommandLine()} archive-push --config ${configPath} %p`,
        // Small checkpoints keep the tests quick; WAL volume is what PITR replays.
        checkpoint_timeout: '30min',
        max_wal_size: '1GB',
      },
    });
    writeStrataConfig(
      configPath,
      pg,
      repoDir,
      { archive: { timeout: 60, ...opts.archive }, ...(opts.backup ? { backup: opts.backup } : {}), ...opts.extra },
      opts.repos,
    );
    chownToPostgres(configPath);
    await pg.start({ waitForPromotion: true });
    const c = new StrataCluster(pg, scratch, configPath, repoDir);
    const init = await c.strata(['init']);
    expect(init.code, init.stderr).toBe(0);
    return c;
  }

  strata(args: string[], opts: { timeoutMs?: number } = {}): Promise<StrataResult> {
    return runStrata(args, { config: this.configPath, timeoutMs: opts.timeoutMs ?? 300_000 });
  }

  /** A full backup that must succeed; returns its label. */
  async backup(): Promise<string> {
    const res = await this.strata(['backup', '--type', 'full', '--start-fast', '--json']);
    expect(res.code, `${res.stderr}\n${res.stdout}`).toBe(0);
    const label = (res.json as { result: { label: string } }).result.label;
    expect(label).toMatch(/^\d{8}-\d{6}F$/);
    return label;
  }

  /** Closes the current WAL segment and waits until PostgreSQL reports it archived. */
  async switchWalAndWait(timeoutMs = 60_000): Promise<string> {
    const [{ w }] = (await this.pg.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w')) as [{ w: string }];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [s] = await this.pg.query<{ last: string | null; failed: string | null }>(
        'SELECT last_archived_wal AS last, last_failed_wal AS failed FROM pg_stat_archiver',
      );
      if (s?.last && s.last >= w) return w;
      if (Date.now() > deadline)
        throw new Error(`segment ${w} not archived in time; last=${s?.last}, failed=${s?.failed}\n${this.pg.logTail(30)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** `strata info` shows one unbroken WAL range reaching at least `last`: no segment missing. */
  async expectNoWalGap(last: string): Promise<void> {
    const info = await this.strata(['info', '--json']);
    const wal = (info.json as { result: { wal: { first: string; last: string; segments: number }[] } }).result.wal;
    expect(wal).toHaveLength(1);
    expect(wal[0]!.last >= last).toBe(true);
    const span = parseInt(wal[0]!.last.slice(16), 16) - parseInt(wal[0]!.first.slice(16), 16) + 1;
    expect(wal[0]!.segments).toBe(span);
  }

  /** A copy of the repository and a config pointing at it (for damage tests). */
  cloneRepo(name: string): { configPath: string; repoDir: string } {
    const dir = path.join(this.scratch, name);
    fs.mkdirSync(dir);
    const repoDir = path.join(dir, 'repo');
    fs.cpSync(this.repoDir, repoDir, { recursive: true });
    const configPath = path.join(dir, 'strata.yaml');
    writeStrataConfig(configPath, this.pg, repoDir, { archive: { timeout: 60 } });
    chownRecursive(dir);
    return { configPath, repoDir };
  }
}

export function chownRecursive(p: string): void {
  chownToPostgres(p);
  if (fs.lstatSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownRecursive(path.join(p, e));
}

/** Restores with `strata restore` into a new directory and attaches a cluster to it (not started). */
export async function restoreInto(
  source: StrataCluster,
  args: string[],
  opts: { configPath?: string } = {},
): Promise<{ result: StrataResult; pg: PgCluster; pgdata: string }> {
  const dir = makeScratchDir('strata-e2e-restore-').dir;
  const pgdata = path.join(dir, 'data');
  const socketDir = path.join(dir, 'sock');
  fs.mkdirSync(socketDir, { mode: 0o700 });
  chownToPostgres(socketDir);
  const result = await runStrata(['restore', '--pgdata', pgdata, '--archive-mode', 'off', '--json', ...args], {
    config: opts.configPath ?? source.configPath,
    timeoutMs: 300_000,
  });
  const pg = PgCluster.attach({
    version: source.pg.version,
    dataDir: pgdata,
    port: await freePort(),
    socketDir,
    logFile: path.join(dir, 'server.log'),
  });
  return { result, pg, pgdata };
}

/** `timestamptz - seconds` as PostgreSQL text with its UTC offset. */
export async function secondsBefore(pg: PgCluster, ts: string, seconds: number): Promise<string> {
  const rows = await pg.query<{ t: string }>(`SELECT ($1::timestamptz - make_interval(secs => $2))::text AS t`, [ts, seconds]);
  return rows[0]!.t;
}
