import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PgCluster, chownToPostgres, freePort, makeScratchDir, postgresUser, stopAllClusters } from './harness/postgres.js';
import { runStrata } from './harness/strata.js';
import { StrataCluster } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

const asRoot = process.getuid?.() === 0;

/**
 * A DBA restoring with sudo: every file in the data directory, including the ones restore writes
 * itself (backup_label, recovery.signal, postgresql.auto.conf), must belong to the cluster's
 * owner, or PostgreSQL started as that owner cannot finish recovery.
 */
describe.skipIf(!asRoot)('strata restore run as root', () => {
  it('leaves a data directory owned by the cluster owner that PostgreSQL can recover and promote', async () => {
    const src = await StrataCluster.create({ version: 15 });
    await src.pg.query('CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g');
    await src.backup();
    await src.switchWalAndWait();

    const dir = makeScratchDir('strata-e2e-rootrestore-').dir;
    const pgdata = path.join(dir, 'data');
    const res = await runStrata(['restore', '--pgdata', pgdata, '--archive-mode', 'off', '--json'], {
      config: src.configPath,
      asPostgres: false,
      timeoutMs: 300_000,
    });
    expect(res.code, `${res.stderr}${res.stdout}`).toBe(0);
    const { uid } = postgresUser();
    for (const name of ['backup_label', 'recovery.signal', 'postgresql.auto.conf', 'PG_VERSION', 'global/pg_control']) {
      expect(fs.statSync(path.join(pgdata, name)).uid, name).toBe(uid);
    }
    const socketDir = path.join(dir, 'sock');
    fs.mkdirSync(socketDir, { mode: 0o700 });
    chownToPostgres(socketDir);
    const restored = PgCluster.attach({
      version: 15,
      dataDir: pgdata,
      port: await freePort(),
      socketDir,
      logFile: path.join(dir, 'server.log'),
    });
    await restored.start({ waitForPromotion: true, timeoutMs: 120_000 });
    expect(await restored.query<{ n: string }>('SELECT count(*)::text AS n FROM t')).toEqual([{ n: '1000' }]);
    await restored.stop();
  }, 300_000);
});
