import { randomBytes } from 'node:crypto';
import { GetObjectTaggingCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { requireEnv } from '@strata/test-servers';
import { stopAllClusters } from './harness/postgres.js';
import { pitrWithRepo } from './scenarios/pitrWithRepo.js';

afterAll(() => stopAllClusters(), 120_000);

// The AWS SDK warns once per process under Node 20; the plugin silences it the same way.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Every key under `prefix`, through S3's own API (not the plugin under test). */
async function listAll(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) out.push(o.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

describe('S3 (Ceph RGW) as the only repository', () => {
  it('backs up, archives WAL and restores to a point in time; objects carry S3 tags', async () => {
    const bucket = requireEnv('STRATA_TEST_S3_BUCKET');
    const endpoint = requireEnv('STRATA_TEST_S3_ENDPOINT');
    const region = requireEnv('STRATA_TEST_S3_REGION');
    const credentials = {
      accessKeyId: requireEnv('STRATA_TEST_S3_ACCESS_KEY_ID'),
      secretAccessKey: requireEnv('STRATA_TEST_S3_SECRET_ACCESS_KEY'),
    };
    const prefix = `e2e/pitr-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    const src = await pitrWithRepo({ name: 's3', plugin: 's3', bucket, prefix, endpoint, region, forcePathStyle: true, credentials });
    await src.pg.stop();

    const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials });
    try {
      const keys = await listAll(client, bucket, `${prefix}/`);
      const manifest = keys.find((k) => k.startsWith(`${prefix}/main/backup/`) && /\/\d{8}-\d{6}F\/manifest$/.test(k));
      expect(manifest, keys.join('\n')).toBeDefined();
      const wal = keys.filter((k) => /\/main\/wal\/[0-9A-F]{16}\/[0-9A-F]{24}-[0-9a-f]{64}\.zst$/.test(k));
      expect(wal.length).toBeGreaterThanOrEqual(2);
      expect(keys.every((k) => k.startsWith(`${prefix}/main/`))).toBe(true);

      const tagsOf = async (key: string): Promise<Record<string, string | undefined>> => {
        const out = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
        return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key ?? '', t.Value]));
      };
      expect(await tagsOf(wal[0]!)).toMatchObject({ 'strata-cluster': 'main', 'strata-kind': 'wal', 'strata-repo': 's3' });
      const label = /\/(\d{8}-\d{6}F)\/manifest$/.exec(manifest!)![1];
      expect(await tagsOf(manifest!)).toMatchObject({
        'strata-cluster': 'main',
        'strata-kind': 'manifest',
        'strata-backup': label,
        'strata-media': 'object',
        'strata-site': 'offsite',
      });
      const pack = keys.find((k) => k.startsWith(`${prefix}/main/backup/${label}/pack/`))!;
      expect(await tagsOf(pack)).toMatchObject({ 'strata-cluster': 'main', 'strata-kind': 'pack', 'strata-backup': label });
    } finally {
      client.destroy();
    }
  });
});
