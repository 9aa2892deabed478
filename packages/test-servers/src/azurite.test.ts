import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { BlobServiceClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { startAzurite } from './azurite.js';

const dataDirs = () => new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('strata-azurite-')));

describe('startAzurite', () => {
  it('serves its container on loopback through the connection string it hands out; stop() ends it and removes its data', async () => {
    const before = dataDirs();
    const server = await startAzurite();
    const mine = [...dataDirs()].filter((n) => !before.has(n));
    expect(mine).toHaveLength(1);
    const {
      STRATA_TEST_AZURE_ENDPOINT: endpoint,
      STRATA_TEST_AZURE_CONTAINER: container,
      STRATA_TEST_AZURE_CONNECTION_STRING: cs,
    } = server.env;
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);
    const client = BlobServiceClient.fromConnectionString(cs!, { retryOptions: { maxTries: 1 } }).getContainerClient(container!);
    await client.getBlockBlobClient('probe').upload('x', 1);
    expect((await client.getBlobClient('probe').getProperties()).contentLength).toBe(1);

    await server.stop();
    await expect(client.getBlobClient('probe').getProperties()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(dataDirs().has(mine[0]!)).toBe(false);
  }, 90_000);
});
