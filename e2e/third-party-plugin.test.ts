import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { makeScratchDir, stopAllClusters } from './harness/postgres.js';
import { runStrata } from './harness/strata.js';
import { pitrWithRepo } from './scenarios/pitrWithRepo.js';

afterAll(() => stopAllClusters(), 120_000);

const EXAMPLE = fileURLToPath(new URL('./example-plugin', import.meta.url));

/**
 * A vendor's storage plugin (e2e/example-plugin, outside packages/), installed the way a user
 * would, with `strata plugins install`, then used as the only repository for archiving, a full
 * backup and a point-in-time restore.
 */
describe('a third-party storage plugin', () => {
  it('installs with "strata plugins install" and carries a full backup and PITR restore', async () => {
    const scratch = makeScratchDir('strata-e2e-plugin-').dir;
    // Where oclif installs plugins; PostgreSQL (archive_command, restore_command) inherits it from this process.
    process.env.STRATA_DATA_DIR = path.join(scratch, 'data');
    process.env.npm_config_cache = path.join(scratch, 'npm-cache');

    const install = await runStrata(['plugins', 'install', `file:${EXAMPLE}`], { timeoutMs: 180_000 });
    expect(install.code, install.stderr + install.stdout).toBe(0);
    const listed = await runStrata(['plugins', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.json).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'strata-plugin-example', version: '1.0.0' })]));

    const dir = path.join(scratch, 'flat-repo');
    await pitrWithRepo({ name: 'vendor', plugin: 'strata-plugin-example', dir });
    // The plugin really stored everything, in its own layout: one flat directory.
    const names = fs.readdirSync(dir).map(decodeURIComponent);
    expect(names).toContain('main/cluster.info');
    expect(names.some((n) => /^main\/backup\/\d{8}-\d{6}F\/manifest$/.test(n))).toBe(true);
    expect(names.some((n) => /^main\/wal\/0000000100000000\/[0-9A-F]{24}-[0-9a-f]{64}\.zst$/.test(n))).toBe(true);
  });
});
