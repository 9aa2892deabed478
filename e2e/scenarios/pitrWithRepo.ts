import { expect } from 'vitest';
import { StrataCluster, restoreInto, secondsBefore } from './strataCluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The PITR acceptance scenario against one repository given as its config entry (a cloud
 * plugin, say): archive WAL and take a full backup into it, commit rows after the backup, make
 * an UPDATE without WHERE, then restore to one second before it and check every row came back.
 * Returns the cluster so callers can add their own checks on the repository.
 */
export async function pitrWithRepo(repo: Record<string, unknown>): Promise<StrataCluster> {
  const src = await StrataCluster.create({ version: 15, repos: [repo] });
  const pg = src.pg;
  await pg.query(`CREATE TABLE orders (id serial PRIMARY KEY, status text NOT NULL, amount numeric(10,2) NOT NULL)`);
  await pg.query(`INSERT INTO orders (status, amount) SELECT 'paid', g * 1.25 FROM generate_series(1, 5000) g`);
  const label = await src.backup();
  await pg.query(`INSERT INTO orders (status, amount) SELECT 'pending', g FROM generate_series(1, 300) g`);
  const expected = await pg.query<{ id: number; status: string }>('SELECT id, status FROM orders ORDER BY id');
  await sleep(2100);
  const out = await pg.psql(`BEGIN; SELECT now()::text; UPDATE orders SET status = 'canceled'; COMMIT;`);
  const incidentAt = out.trim().split('\n')[0]!;
  await src.switchWalAndWait();

  const target = await secondsBefore(pg, incidentAt, 1);
  const { result, pg: restored } = await restoreInto(src, ['--target-time', target, '--target-action', 'promote']);
  expect(result.code, result.stderr).toBe(0);
  expect((result.json as { result: { label: string } }).result.label).toBe(label);
  await restored.start({ waitForPromotion: true, timeoutMs: 120_000 });
  expect(await restored.query<{ id: number; status: string }>('SELECT id, status FROM orders ORDER BY id')).toEqual(expected);
  await restored.stop();
  return src;
}
