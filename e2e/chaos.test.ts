import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { chownToPostgres, makeScratchDir, stopAllClusters } from './harness/postgres.js';
import { runStrata, writeStrataConfig } from './harness/strata.js';
import { pitrWithRepo } from './scenarios/pitrWithRepo.js';
import { StrataCluster } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

/** The fs repository behind the chaos wrapper (e2e/plugins/flaky-fs.ts), loaded by path like any third-party plugin. */
const FLAKY = fileURLToPath(new URL('./dist/plugins/flaky-fs.js', import.meta.url));

function faultLog(dir: string): string {
  const file = path.join(dir, 'faults.log');
  fs.writeFileSync(file, '');
  fs.chmodSync(file, 0o666);
  chownToPostgres(file);
  return file;
}

const faults = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);

describe('storage faults', () => {
  it('transient: the first and every 4th upload and read of each process failing, archiving, backup and PITR restore still succeed', async () => {
    const dir = makeScratchDir('strata-e2e-flaky-').dir;
    const log = faultLog(dir);
    await pitrWithRepo({
      name: 'flaky',
      plugin: FLAKY,
      path: path.join(dir, 'repo'),
      failEvery: 4,
      operations: ['put', 'get'],
      faultLog: log,
    });
    const injected = faults(log);
    // Faults really happened: in WAL uploads (archive-push), in the backup's uploads, in the restore's reads.
    expect(injected.filter((l) => / put main\/wal\//.test(l)).length).toBeGreaterThan(2);
    expect(injected.filter((l) => / put main\/backup\//.test(l)).length).toBeGreaterThan(0);
    expect(injected.filter((l) => / get main\/backup\//.test(l)).length).toBeGreaterThan(0);
  });

  it('permanent: a refused upload fails the backup naming plugin, operation and key, and leaves no backup', async () => {
    const src = await StrataCluster.create({ version: 15 });
    const dir = makeScratchDir('strata-e2e-denied-').dir;
    const log = faultLog(dir);
    const config = path.join(dir, 'strata.yaml');
    writeStrataConfig(config, src.pg, src.repoDir, {}, [
      { name: 'denied', plugin: FLAKY, path: src.repoDir, failEvery: 1, operations: ['put'], code: 'PermissionDenied', faultLog: log },
    ]);
    chownToPostgres(config);

    const res = await runStrata(['backup', '--type', 'full', '--start-fast', '--json'], { config });
    expect(res.code, res.stderr).toBe(7);
    const err = res.json as { message: string; context: { key: string } };
    expect(err.message).toMatch(
      /^put "main\/backup\/\d{8}-\d{6}F\/pack\/000000" in repository "denied" \(chaos\(fs:.*\)\) failed: injected failure/,
    );
    expect(faults(log)).toHaveLength(1);

    // Read through a healthy config: nothing of the failed backup is visible as a backup.
    const info = await src.strata(['info', '--json']);
    expect(info.code, info.stderr).toBe(0);
    const report = (info.json as { result: { backups: unknown[]; incomplete: string[] } }).result;
    expect(report.backups).toEqual([]);
    expect(report.incomplete).toEqual([]);
  });
});
