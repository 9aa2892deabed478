import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { GcsBackend, gcsConfigSchema } from '@strata/plugin-gcs';
import { requireEnv } from '@strata/test-servers';
import { stopAllClusters } from './harness/postgres.js';
import { pitrWithRepo } from './scenarios/pitrWithRepo.js';

afterAll(() => stopAllClusters(), 120_000);

/**
 * Google Cloud Storage as the only repository (the emulator the global setup starts): WAL
 * archiving, a full backup and a point-in-time restore all go through the gcs plugin.
 */
describe('GCS repository', () => {
  it('backs up, archives and restores to a point in time with GCS as the only repository', async () => {
    const repo = {
      bucket: requireEnv('STRATA_TEST_GCS_BUCKET'),
      prefix: `strata-e2e/${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`,
      apiEndpoint: requireEnv('STRATA_TEST_GCS_ENDPOINT'),
      projectId: requireEnv('STRATA_TEST_GCS_PROJECT'),
    };
    const src = await pitrWithRepo({ name: 'gcs', plugin: 'gcs', ...repo });
    await src.pg.stop();

    // What the bucket holds under the prefix, read with the plugin itself.
    const backend = new GcsBackend(gcsConfigSchema.parse(repo), '/');
    const objects: { key: string; tags?: Record<string, string> }[] = [];
    for await (const o of backend.list('')) objects.push(o);
    const keys = objects.map((o) => o.key);
    expect(keys).toContain('main/cluster.info');
    const manifests = keys.filter((k) => /^main\/backup\/\d{8}-\d{6}F\/manifest$/.test(k));
    expect(manifests).toHaveLength(1);
    const label = manifests[0]!.split('/')[2]!;
    expect(keys.some((k) => k.startsWith(`main/backup/${label}/pack/`))).toBe(true);
    const wal = keys.filter((k) => /^main\/wal\/[0-9A-F]{16}\/[0-9A-F]{24}-[0-9a-f]{64}\.zst$/.test(k));
    expect(wal.length).toBeGreaterThanOrEqual(2);

    // Strata's tags ride along as GCS custom metadata.
    const tagsOf = (key: string) => objects.find((o) => o.key === key)?.tags;
    expect(tagsOf(manifests[0]!)).toMatchObject({
      'strata-cluster': 'main',
      'strata-kind': 'manifest',
      'strata-backup': label,
      'strata-repo': 'gcs',
      'strata-media': 'object',
      'strata-site': 'offsite',
    });
    for (const key of wal) expect(tagsOf(key)).toMatchObject({ 'strata-cluster': 'main', 'strata-kind': 'wal', 'strata-repo': 'gcs' });
  });
});
