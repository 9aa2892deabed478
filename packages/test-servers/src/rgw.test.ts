import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findBinaries } from './rgw.js';

describe('startRgw', () => {
  it('names the apt-get command when the Ceph binaries are missing', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'strata-no-ceph-'));
    try {
      expect(() => findBinaries([empty])).toThrow(
        /Ceph RGW is not installed \(missing ceph-authtool, .*radosgw-admin\): run "apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw"/,
      );
    } finally {
      await rm(empty, { recursive: true });
    }
  });

  it.runIf(process.env.STRATA_TEST_SERVERS_STARTED?.split(',').includes('s3'))('provides the S3 variables to the tests', () => {
    expect(process.env.STRATA_TEST_S3_ENDPOINT).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const v of ['REGION', 'ACCESS_KEY_ID', 'SECRET_ACCESS_KEY', 'BUCKET']) expect(process.env[`STRATA_TEST_S3_${v}`]).toBeTruthy();
  });
});
