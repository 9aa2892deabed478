import * as path from 'node:path';
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAllClusters } from './harness/postgres.js';
import { StrataCluster, restoreInto } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

/**
 * DROP TABLE, recovered three ways: up to (not including) the dropping transaction, up to an LSN
 * taken before it, and up to a named restore point.
 */
describe('recovering a dropped table (PostgreSQL 15)', () => {
  let src: StrataCluster;
  let lsnBefore: string;
  let dropXid: string;
  const expectedCustomers = 1500;

  beforeAll(async () => {
    src = await StrataCluster.create({ version: 15 });
    const pg = src.pg;
    await pg.query(`CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, since date NOT NULL)`);
    await pg.query(`INSERT INTO customers SELECT g, 'name ' || g, date '2020-01-01' + g FROM generate_series(1, 1000) g`);
    await src.backup();
    await pg.query(`INSERT INTO customers SELECT g, 'new ' || g, date '2026-01-01' FROM generate_series(1001, 1500) g`);
    lsnBefore = (await pg.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;
    await pg.query(`SELECT pg_create_restore_point('before_drop')`);
    const out = await pg.psql('BEGIN; SELECT txid_current(); DROP TABLE customers; COMMIT;');
    dropXid = out.trim().split('\n')[0]!;
    expect(dropXid).toMatch(/^\d+$/);
    await src.switchWalAndWait();
  });

  const cases: [string, () => string[]][] = [
    ['--target-xid (exclusive of the DROP)', () => ['--target-xid', dropXid, '--target-exclusive']],
    ['--target-lsn', () => ['--target-lsn', lsnBefore]],
    ['--target-name', () => ['--target-name', 'before_drop']],
  ];

  it.each(cases)('brings the table back with %s', async (_name, args) => {
    const { result, pg } = await restoreInto(src, [...args(), '--target-action', 'promote']);
    expect(result.code, result.stderr).toBe(0);
    await pg.start({ waitForPromotion: true, timeoutMs: 120_000 });
    const rows = await pg.query<{ n: string; max: number }>('SELECT count(*) AS n, max(id) AS max FROM customers');
    expect(rows[0]).toEqual({ n: String(expectedCustomers), max: expectedCustomers });
    await pg.stop();
  });

  it('refuses a restore into a non-empty directory and an LSN target before every backup', async () => {
    const first = await restoreInto(src, ['--target-lsn', '0/10']);
    expect(first.result.code).toBe(3);
    expect((first.result.json as { message: string }).message).toMatch(/no backup finished before the recovery target/);
    const again = await src.strata(['restore', '--pgdata', src.pg.dataDir]);
    expect(again.code).toBe(9);
    expect(again.stderr).toMatch(/is not empty \(postmaster\.pid is present/);
    // The refused directory is left exactly as it was: the running cluster still has its files and answers.
    for (const f of ['PG_VERSION', 'postmaster.pid', 'global/pg_control'])
      expect(fs.existsSync(path.join(src.pg.dataDir, f)), f).toBe(true);
    await src.pg.query('CREATE TABLE still_here AS SELECT 1 AS id');
    await src.pg.query('CHECKPOINT');
    expect(await src.pg.query('SELECT id FROM still_here')).toEqual([{ id: 1 }]);
  });
});
