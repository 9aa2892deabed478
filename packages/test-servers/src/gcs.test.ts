import { describe, expect, it } from 'vitest';
import { startGcsEmulator } from './gcs.js';

describe('startGcsEmulator', () => {
  it('serves the bucket on a free loopback port, and stop() ends it', async () => {
    const server = await startGcsEmulator();
    const { STRATA_TEST_GCS_ENDPOINT: endpoint, STRATA_TEST_GCS_BUCKET: bucket } = server.env;
    try {
      expect(server.env).toMatchObject({ STRATA_TEST_GCS_EMULATOR: 'firebase', STRATA_TEST_GCS_PROJECT: 'strata-test' });
      expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      // An upload and a listing through the JSON API routes the plugin uses.
      const boundary = 'strata-boundary';
      const body = [
        `--${boundary}\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ name: 'probe' })}\r\n`,
        `--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\nhello\r\n--${boundary}--\r\n`,
      ].join('');
      const put = await fetch(`${endpoint}/upload/storage/v1/b/${bucket}/o?uploadType=multipart`, {
        method: 'POST',
        headers: { 'Content-Type': `multipart/related; boundary=${boundary}` },
        body,
      });
      expect(put.status).toBe(200);
      const list = (await (await fetch(`${endpoint}/storage/v1/b/${bucket}/o`)).json()) as { items?: { name: string; size: string }[] };
      expect(list.items?.map((i) => [i.name, i.size])).toEqual([['probe', '5']]);
    } finally {
      await server.stop();
    }
    await expect(fetch(`${endpoint}/storage/v1/b/${bucket}/o`)).rejects.toThrow();
  }, 90_000);
});
