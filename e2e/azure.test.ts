import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { ObjectInfo } from '@strata/core';
import { AzureBackend, azureConfigSchema } from '@strata/plugin-azure';
import { requireEnv } from '@strata/test-servers';
import * as path from 'node:path';
import { makeScratchDir, stopAllClusters } from './harness/postgres.js';
import { runStrata, writeStrataConfig } from './harness/strata.js';
import { pitrWithRepo } from './scenarios/pitrWithRepo.js';

afterAll(() => stopAllClusters(), 120_000);

/**
 * Azure Blob Storage (Azurite, started by the global setup) as the only repository: WAL
 * archiving, a full backup and a PITR restore all go through the azure plugin in the real
 * binary. The account key reaches the plugin by reference (accountKeyEnv), as a DBA would keep
 * it out of the config file; archive_command inherits it from the server's environment.
 */
describe('Azure Blob Storage as the only repository', () => {
  const container = requireEnv('STRATA_TEST_AZURE_CONTAINER');
  const endpoint = requireEnv('STRATA_TEST_AZURE_ENDPOINT');
  const account = requireEnv('STRATA_TEST_AZURE_ACCOUNT');
  const prefix = `e2e-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const backend = new AzureBackend(
    azureConfigSchema.parse({ container, prefix, endpoint, account, accountKeyEnv: 'STRATA_TEST_AZURE_KEY' }),
  );

  afterAll(async () => {
    const left: string[] = [];
    for await (const o of backend.list('')) left.push(o.key);
    await backend.delete(left);
  }, 120_000);

  it('takes a full backup and restores to a point in time, leaving backup and WAL blobs with their tags', async () => {
    await pitrWithRepo({ name: 'azure', plugin: 'azure', container, prefix, endpoint, account, accountKeyEnv: 'STRATA_TEST_AZURE_KEY' });

    const objects: ObjectInfo[] = [];
    for await (const o of backend.list('main/')) objects.push(o);
    const keys = objects.map((o) => o.key);
    expect(keys).toContain('main/cluster.info');

    const manifests = keys.filter((k) => /^main\/backup\/\d{8}-\d{6}F\/manifest$/.test(k));
    expect(manifests).toHaveLength(1);
    const label = manifests[0]!.split('/')[2]!;
    expect(keys.filter((k) => k.startsWith(`main/backup/${label}/pack/`)).length).toBeGreaterThan(0);
    expect((await backend.head(manifests[0]!))?.tags).toMatchObject({
      'strata-cluster': 'main',
      'strata-kind': 'manifest',
      'strata-backup': label,
      'strata-repo': 'azure',
      'strata-media': 'object',
      'strata-site': 'offsite',
    });
    const pack = keys.find((k) => k.startsWith(`main/backup/${label}/pack/`))!;
    expect((await backend.head(pack))?.tags).toMatchObject({ 'strata-cluster': 'main', 'strata-kind': 'pack', 'strata-backup': label });

    const segments = objects.filter((o) => /^main\/wal\/[0-9A-F]{16}\/[0-9A-F]{24}-[0-9a-f]{64}\.zst$/.test(o.key));
    // The backup's own WAL plus the segments switched after it for the PITR target.
    expect(segments.length).toBeGreaterThanOrEqual(2);
    for (const s of segments) expect(s.size).toBeGreaterThan(0);
    expect((await backend.head(segments[0]!.key))?.tags).toMatchObject({
      'strata-cluster': 'main',
      'strata-kind': 'wal',
      'strata-repo': 'azure',
    });
  });

  it('fails with a wrong account key with exit 7, and prints no secret even at debug level', async () => {
    const scratch = makeScratchDir('strata-e2e-azure-').dir;
    const config = path.join(scratch, 'strata.yaml');
    const wrongKey = randomBytes(64).toString('base64');
    const pg = { dataDir: path.join(scratch, 'pgdata'), socketDir: scratch, port: 5432 };
    writeStrataConfig(config, pg, scratch, {}, [
      { name: 'azure', plugin: 'azure', container, prefix, endpoint, account, accountKey: wrongKey },
    ]);
    for (const args of [
      ['info', '--json'],
      ['info', '--log-level', 'debug'],
    ]) {
      const res = await runStrata(args, { config, asPostgres: false });
      expect(res.code, res.stderr).toBe(7);
      expect(`${res.stdout}${res.stderr}`).toMatch(/in Azure container \\?"strata-test\\?" was refused \(403/);
      expect(`${res.stdout}${res.stderr}`).not.toContain(wrongKey);
      // At debug level the cause is printed too: the sanitized one, without the server's message.
      if (args.includes('debug')) expect(res.stderr).toMatch(/Cause: Error: RestError 403 AuthorizationFailure/);
    }
  });
});
