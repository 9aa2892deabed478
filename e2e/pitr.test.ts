import { afterAll, describe, expect, it } from 'vitest';
import { debianPgBin, pgVersionsUnderTest, runAsPostgres, stopAllClusters } from './harness/postgres.js';
import { StrataCluster, restoreInto, secondsBefore } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The incident every DBA fears: an UPDATE without WHERE. Restoring to one second before it must
 * bring back every order as it was, including orders committed after the backup (the RPO is the
 * archived WAL, not the backup).
 */
describe.each(pgVersionsUnderTest())('point-in-time recovery on PostgreSQL %i', (version) => {
  it('recovers from UPDATE without WHERE with --target-time', async () => {
    const src = await StrataCluster.create({ version });
    const pg = src.pg;
    await pg.query(
      `CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, status text NOT NULL, amount numeric(10,2) NOT NULL)`,
    );
    await pg.query(`INSERT INTO orders (customer, status, amount)
                    SELECT 'customer ' || g, (ARRAY['pending','paid','shipped'])[1 + g % 3], g * 1.25 FROM generate_series(1, 2000) g`);
    const label = await src.backup();

    // After the backup: new orders and status changes that only WAL carries.
    await pg.query(
      `INSERT INTO orders (customer, status, amount) SELECT 'late customer ' || g, 'pending', g FROM generate_series(1, 300) g`,
    );
    await pg.query(`UPDATE orders SET status = 'delivered' WHERE id % 7 = 0`);
    const expected = await pg.query<{ id: number; status: string }>('SELECT id, status FROM orders ORDER BY id');
    const dumpBefore = version === 15 ? await pg.dumpNormalized('postgres') : undefined;
    await sleep(2100);

    const [{ t }] = (await pg.query<{ t: string }>('SELECT now()::text AS t')) as [{ t: string }];
    const out = await pg.psql(`BEGIN; SELECT now()::text; UPDATE orders SET status = 'canceled'; COMMIT;`);
    const incidentAt = out.trim().split('\n')[0]!;
    expect(incidentAt >= t).toBe(true);
    expect((await pg.query<{ n: string }>(`SELECT count(*) AS n FROM orders WHERE status <> 'canceled'`))[0]!.n).toBe('0');
    await src.switchWalAndWait();

    const target = await secondsBefore(pg, incidentAt, 1);
    const { result, pg: restored, pgdata } = await restoreInto(src, ['--target-time', target, '--target-action', 'promote']);
    expect(result.code, result.stderr).toBe(0);
    expect((result.json as { result: { label: string } }).result.label).toBe(label);
    await restored.start({ waitForPromotion: true, timeoutMs: 120_000 });

    const got = await restored.query<{ id: number; status: string }>('SELECT id, status FROM orders ORDER BY id');
    expect(got).toHaveLength(2300);
    expect(got.filter((r) => r.status === 'canceled')).toHaveLength(0);
    expect(got).toEqual(expected);

    if (version === 15) {
      // Equality of everything, not just one table; then checksums of the stopped cluster.
      expect(await restored.dumpNormalized('postgres')).toBe(dumpBefore);
      await restored.stop();
      const check = await runAsPostgres(debianPgBin('pg_checksums'), ['--check', '-D', pgdata]);
      expect(check.code, check.stderr + check.stdout).toBe(0);
      expect(check.stdout).toMatch(/Bad checksums:\s+0/);
    }
  });
});
