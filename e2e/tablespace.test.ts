import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chownToPostgres, makeScratchDir, stopAllClusters } from './harness/postgres.js';
import { StrataCluster, restoreInto } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

describe('tablespaces (PostgreSQL 15)', () => {
  it('backs up a tablespace and restores it to a new location with --tablespace-map', async () => {
    const src = await StrataCluster.create({ version: 15 });
    const location = path.join(makeScratchDir('strata-e2e-tblspc-').dir, 'ts1');
    fs.mkdirSync(location, { mode: 0o700 });
    chownToPostgres(location);
    await src.pg.query(`CREATE TABLESPACE ts1 LOCATION '${location}'`);
    await src.pg.query(`CREATE TABLE far (id int, v text) TABLESPACE ts1`);
    await src.pg.query(`INSERT INTO far SELECT g, md5(g::text) FROM generate_series(1, 50000) g`);
    await src.backup();
    await src.pg.query(`INSERT INTO far SELECT g, 'after' FROM generate_series(50001, 50100) g`);
    await src.switchWalAndWait();

    const newLocation = path.join(makeScratchDir('strata-e2e-tblspc-new-').dir, 'moved');
    const { result, pg, pgdata } = await restoreInto(src, ['--tablespace-map', `ts1=${newLocation}`]);
    expect(result.code, result.stderr).toBe(0);
    const oid = fs.readdirSync(path.join(pgdata, 'pg_tblspc'))[0]!;
    expect(fs.readlinkSync(path.join(pgdata, 'pg_tblspc', oid))).toBe(newLocation);
    expect(fs.readFileSync(path.join(pgdata, 'tablespace_map'), 'utf8')).toContain(`${oid} ${newLocation}`);
    await pg.start({ waitForPromotion: true, timeoutMs: 120_000 });
    const rows = await pg.query<{ n: string; loc: string }>(
      `SELECT (SELECT count(*) FROM far)::text AS n, pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = 'ts1'`,
    );
    expect(rows).toEqual([{ n: '50100', loc: newLocation }]);

    // The original location is untouched and a map naming no tablespace is refused.
    const bad = await restoreInto(src, ['--tablespace-map', 'nope=/tmp/x']);
    expect(bad.result.code).toBe(2);
    expect((bad.result.json as { message: string }).message).toMatch(/names "nope", which is not a tablespace/);
  });
});
