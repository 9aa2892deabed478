import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAllClusters, type PgCluster } from './harness/postgres.js';
import { runStrata } from './harness/strata.js';
import { StrataCluster, restoreInto } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

interface RestoreJson {
  result: { bytesFetched: number; delta?: { kept: number; patched: number; restored: number; removed: string[] } };
}

/** Delta restore rewinds a stopped data directory to a backup, fetching only what differs. */
describe('delta restore (PostgreSQL 15)', () => {
  let src: StrataCluster;
  let label: string;
  let backupRepoBytes: number;
  let reference: string;
  let target: { pg: PgCluster; pgdata: string };
  const args = () => ['--set', label, '--target-immediate', '--target-action', 'promote'];

  const delta = async () => {
    const res = await runStrata(['restore', '--delta', '--pgdata', target.pgdata, '--archive-mode', 'off', '--json', ...args()], {
      config: src.configPath,
    });
    expect(res.code, res.stderr + res.stdout).toBe(0);
    return (res.json as RestoreJson).result;
  };

  beforeAll(async () => {
    src = await StrataCluster.create({ version: 15 });
    await src.pg.pgbench(['-i', '-s', '10', '-q', 'postgres'], { timeoutMs: 600_000 });
    await src.pg.query('VACUUM (FREEZE, ANALYZE)');
    const res = await src.strata(['backup', '--type', 'full', '--start-fast', '--json']);
    expect(res.code, res.stderr).toBe(0);
    ({ label, repoBytes: backupRepoBytes } = (res.json as { result: { label: string; repoBytes: number } }).result);
    await src.switchWalAndWait();

    // What a fresh full restore of the backup looks like.
    const fresh = await restoreInto(src, args());
    expect(fresh.result.code, fresh.result.stderr).toBe(0);
    await fresh.pg.start({ waitForPromotion: true, timeoutMs: 120_000 });
    reference = await fresh.pg.dumpNormalized('postgres');
    await fresh.pg.stop();

    // The directory delta restore will rewind: restored, started, then changed.
    const restored = await restoreInto(src, args());
    expect(restored.result.code, restored.result.stderr).toBe(0);
    target = { pg: restored.pg, pgdata: restored.pgdata };
  });

  it('refuses a running cluster, then fetches under 5% of the backup after a small change', async () => {
    await target.pg.start({ waitForPromotion: true, timeoutMs: 120_000 });
    await target.pg.query('UPDATE pgbench_branches SET bbalance = bbalance + 7');
    await target.pg.query('UPDATE pgbench_tellers SET tbalance = tbalance + 7');
    const running = await runStrata(['restore', '--delta', '--pgdata', target.pgdata, '--json', ...args()], { config: src.configPath });
    expect(running.code).toBe(9);
    expect((running.json as { message: string }).message).toMatch(/PostgreSQL is running on/);
    await target.pg.stop();

    const result = await delta();
    process.stderr.write(
      `delta: fetched ${result.bytesFetched} of ${backupRepoBytes} bytes (${((result.bytesFetched / backupRepoBytes) * 100).toFixed(2)}%), ${JSON.stringify({ ...result.delta, removed: result.delta!.removed.length })}\n`,
    );
    expect(result.bytesFetched).toBeLessThan(0.05 * backupRepoBytes);
    expect(result.delta!.kept).toBeGreaterThan(0);
    await target.pg.start({ waitForPromotion: true, timeoutMs: 120_000 });
    expect(await target.pg.dumpNormalized('postgres')).toBe(reference);
    await target.pg.stop();
  });

  it('--force trusts size and mtime; without it the content is compared', async () => {
    const [{ file }] = (await src.pg.query<{ file: string }>(`SELECT pg_relation_filepath('pgbench_branches') AS file`)) as [
      { file: string },
    ];
    const victim = path.join(target.pgdata, file);
    await delta(); // every file now has the backup's content and mtime
    const before = fs.statSync(victim);
    const original = fs.readFileSync(victim);
    const damaged = Buffer.from(original);
    damaged.fill(0x55, 100, 200);
    fs.writeFileSync(victim, damaged);
    fs.utimesSync(victim, before.atimeMs / 1000, before.mtimeMs / 1000);

    const forced = await runStrata(
      ['restore', '--delta', '--force', '--pgdata', target.pgdata, '--archive-mode', 'off', '--json', ...args()],
      {
        config: src.configPath,
      },
    );
    expect(forced.code, forced.stderr).toBe(0);
    expect(fs.readFileSync(victim).equals(damaged)).toBe(true);

    await delta();
    expect(fs.readFileSync(victim).equals(original)).toBe(true);
  });

  it('repairs a deleted file, a stray file and a truncated file', async () => {
    const [paths] = (await src.pg.query<{ index: string; table: string; db: string }>(
      `SELECT pg_relation_filepath('pgbench_accounts_pkey') AS index, pg_relation_filepath('pgbench_accounts') AS table,
              (SELECT oid::text FROM pg_database WHERE datname = 'postgres') AS db`,
    )) as [{ index: string; table: string; db: string }];
    const deleted = path.join(target.pgdata, paths.index);
    const truncated = path.join(target.pgdata, paths.table);
    const stray = path.join(target.pgdata, 'base', paths.db, '999999');
    expect(fs.statSync(deleted).size).toBeGreaterThan(0);
    fs.rmSync(deleted);
    // Cut a large relation file in half: the rest is patched in place, not refetched whole.
    fs.truncateSync(truncated, Math.floor(fs.statSync(truncated).size / 2));
    fs.writeFileSync(stray, Buffer.alloc(8192, 1));

    const result = await delta();
    expect(result.delta!.restored).toBeGreaterThanOrEqual(1);
    expect(result.delta!.patched).toBeGreaterThanOrEqual(1);
    expect(result.delta!.removed).toContain(`base/${paths.db}/999999`);
    expect(fs.existsSync(stray)).toBe(false);
    expect(fs.statSync(deleted).size).toBeGreaterThan(0);
    await target.pg.start({ waitForPromotion: true, timeoutMs: 120_000 });
    expect(await target.pg.dumpNormalized('postgres')).toBe(reference);
    await target.pg.stop();
  });
});
