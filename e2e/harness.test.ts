import { afterAll, describe, expect, it } from 'vitest';
import { PgCluster, debianPgBin, pgVersionsUnderTest, runAsPostgres, stopAllClusters } from './harness/postgres.js';
import { strataCommandLine } from './harness/strata.js';

afterAll(async () => {
  await stopAllClusters();
}, 120_000);

describe('e2e harness', () => {
  it('builds an archive_command-safe Strata command line', () => {
    expect(strataCommandLine()).toMatch(/^'\/.+node'( '--[^']+')* '\/.+\/packages\/agent\/bin\/run\.js'$/);
  });

  for (const version of pgVersionsUnderTest()) {
    it(`runs a checksummed PostgreSQL ${version} cluster`, async () => {
      const cluster = await PgCluster.init({
        version,
        settings: { wal_level: 'replica', archive_mode: 'on', archive_command: '/bin/true' },
      });
      await cluster.start({ waitForPromotion: true });
      expect(await cluster.isRunning()).toBe(true);

      await cluster.query('CREATE TABLE t (id int PRIMARY KEY, note text)');
      await cluster.query("INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 1000) g");
      const rows = await cluster.query<{ n: string; s: string }>('SELECT count(*) AS n, sum(id) AS s FROM t WHERE note LIKE $1', ['row %']);
      expect(rows).toEqual([{ n: '1000', s: '500500' }]);

      const [checksums] = await cluster.query<{ data_checksums: string }>('SHOW data_checksums');
      expect(checksums?.data_checksums).toBe('on');
      expect((await cluster.psql('SHOW server_version_num')).trim()).toMatch(new RegExp(`^${version}\\d{4}$`));
      expect((await cluster.psql('SHOW archive_command')).trim()).toBe('/bin/true');

      await cluster.stop();
      expect(await cluster.isRunning()).toBe(false);

      // Only PG 15 has a matching pg_checksums (the embedded 16/17 packages ship none).
      if (version === 15) {
        const res = await runAsPostgres(debianPgBin('pg_checksums'), ['--check', '-D', cluster.dataDir]);
        expect(res.code, res.stderr).toBe(0);
        expect(res.stdout).toMatch(/Bad checksums:\s+0/);
      }
    }, 60_000);
  }
});
