import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { Storage } from '@google-cloud/storage';
import { afterAll, describe, expect, it } from 'vitest';
import { isStrataError, parsePluginConfig, type StorageBackend, type StorageCapabilities, type StrataError } from '@strata/core';
import { expectStrataError, readAll, rejection, runStorageConformance } from '@strata/core/testing';
import { requireEnv } from '@strata/test-servers';
import plugin, { GcsBackend, TAG_PREFIX, gcsConfigSchema, mapGcsError, type GcsConfig } from './index.js';

/**
 * What each emulator STRATA_TEST_GCS_EMULATOR can name cannot check, declared as capabilities the
 * conformance kit then skips. Against real GCS (no STRATA_TEST_GCS_EMULATOR) nothing is skipped.
 * firebase: the Firebase Storage emulator accepts `ifGenerationMatch: 0` but does not enforce it.
 */
const EMULATOR_GAPS: Record<string, Partial<StorageCapabilities>> = {
  firebase: { writeIfNotExists: false },
};
const emulator = process.env.STRATA_TEST_GCS_EMULATOR;

const bucket = () => requireEnv('STRATA_TEST_GCS_BUCKET');
const endpoint = () => requireEnv('STRATA_TEST_GCS_ENDPOINT');
/** Every run writes under its own prefix, so runs against one bucket never meet. */
const runPrefix = `strata-test/gcs-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

/** Config for the test bucket, under `name` inside this run's prefix. */
function config(name: string, overrides: Partial<GcsConfig> = {}): GcsConfig {
  return gcsConfigSchema.parse({
    bucket: bucket(),
    prefix: `${runPrefix}/${name}`,
    apiEndpoint: endpoint(),
    projectId: requireEnv('STRATA_TEST_GCS_PROJECT'),
    ...overrides,
  });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** The backend with the emulator's gaps declared: the kit reads capabilities to decide what to run. */
function declaringGaps(backend: StorageBackend): StorageBackend {
  const gaps = emulator === undefined ? {} : EMULATOR_GAPS[emulator];
  if (!gaps) throw new Error(`STRATA_TEST_GCS_EMULATOR=${emulator} is unknown here; known: ${Object.keys(EMULATOR_GAPS).join(', ')}`);
  return {
    capabilities: { ...backend.capabilities, ...gaps },
    put: (key, body, options) => backend.put(key, body, options),
    get: (key, options) => backend.get(key, options),
    head: (key) => backend.head(key),
    list: (prefix) => backend.list(prefix),
    delete: (keys) => backend.delete(keys),
    describe: () => backend.describe(),
  };
}

/** A raw client on the same bucket, to see what the plugin stored in GCS's own terms. */
function rawBucket() {
  return new Storage({ apiEndpoint: endpoint(), projectId: requireEnv('STRATA_TEST_GCS_PROJECT') }).bucket(bucket());
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

runStorageConformance('gcs', async () => ({ backend: declaringGaps(new GcsBackend(config('kit'), '/')) }), {
  largeObjectTimeout: 300_000,
});

describe('GcsBackend', () => {
  const backend = new GcsBackend(config('extras'), '/');

  afterAll(async () => {
    const keys: string[] = [];
    for await (const o of backend.list('')) keys.push(o.key);
    await backend.delete(keys);
  });

  it('stores objects under the prefix and describes itself as gs://bucket/prefix', async () => {
    await backend.put('c/wal/seg', Buffer.from('wal bytes'));
    const [files] = await rawBucket().getFiles({ prefix: `${runPrefix}/extras/` });
    expect(files.map((f) => f.name)).toEqual([`${runPrefix}/extras/c/wal/seg`]);
    expect(backend.describe()).toBe(`gs://${bucket()}/${runPrefix}/extras (endpoint ${endpoint()})`);
    expect((await collect(backend.list('c/'))).map((o) => o.key)).toEqual(['c/wal/seg']);
  });

  it('keeps tags as custom metadata under its own prefix, beside the object', async () => {
    await backend.put('tagged', Buffer.from('x'), { tags: { cluster: 'main', kind: 'wal', role: 'offsite' } });
    const [metadata] = await rawBucket().file(`${runPrefix}/extras/tagged`).getMetadata();
    expect(metadata.metadata).toEqual({ [`${TAG_PREFIX}cluster`]: 'main', [`${TAG_PREFIX}kind`]: 'wal', [`${TAG_PREFIX}role`]: 'offsite' });
    expect(metadata.contentType).toBe('application/octet-stream');
    // Custom metadata someone else set is not taken for Strata's tags.
    await rawBucket()
      .file(`${runPrefix}/extras/tagged`)
      .setMetadata({ metadata: { owner: 'dba-team' } });
    expect((await backend.head('tagged'))?.tags).toEqual({ cluster: 'main', kind: 'wal', role: 'offsite' });
    const listed = await collect(backend.list('tagged'));
    expect(listed.map((o) => o.tags)).toEqual([{ cluster: 'main', kind: 'wal', role: 'offsite' }]);
  });

  it('tags a streamed upload too', async () => {
    await backend.put('tagged-stream', Readable.from([randomBytes(70_000), randomBytes(70_000)]), { tags: { kind: 'backup' } });
    expect(await backend.head('tagged-stream')).toMatchObject({ size: 140_000, tags: { kind: 'backup' } });
  });

  it('maps an endpoint nobody listens on to Unavailable, naming the operation, bucket and key', async () => {
    const down = new GcsBackend(config('down', { apiEndpoint: `http://127.0.0.1:${await closedPort()}`, timeout: 5 }), '/');
    const where = `gs://${bucket()}/${runPrefix}/down/some/key`;
    for (const [operation, call] of [
      ['put', () => down.put('some/key', Buffer.from('x'))],
      ['get', () => down.get('some/key')],
      ['head', () => down.head('some/key')],
      ['delete', () => down.delete(['some/key'])],
      ['list', () => collect(down.list('some/'))],
    ] as const) {
      const err = await expectStrataError(call, 'Unavailable');
      expect(err.retryable).toBe(true);
      expect(err.operation).toBe(operation);
      expect(err.message).toContain(operation);
      expect(err.message).toContain(operation === 'list' ? `gs://${bucket()}/${runPrefix}/down/some/` : where);
      expect(err.message).toMatch(/ECONNREFUSED/);
    }
  });

  it('maps a server that never answers to Unavailable after timeout seconds', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as { port: number };
      const slow = new GcsBackend(config('silent', { apiEndpoint: `http://127.0.0.1:${port}`, timeout: 1 }), '/');
      const started = Date.now();
      for (const call of [
        () => slow.head('k'),
        () => slow.get('k'),
        () => slow.put('k', Buffer.from('x')),
        () => slow.put('k', Readable.from([randomBytes(1000)])),
      ]) {
        const err = await expectStrataError(call, 'Unavailable');
        expect(err.message).toMatch(/time/i);
      }
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('rejects get of a missing key with NotFound, also for an empty range', async () => {
    await expectStrataError(() => backend.get('no/such/object', { range: { start: 3, end: 3 } }), 'NotFound');
    const err = await expectStrataError(() => backend.get('no/such/object', { range: { start: 0, end: 10 } }), 'NotFound');
    expect(err.message).toContain(`gs://${bucket()}/${runPrefix}/extras/no/such/object`);
  });

  it('reads a range that starts at the end of the object as empty', async () => {
    await backend.put('short', Buffer.from('0123456789'));
    expect((await readAll(await backend.get('short', { range: { start: 4 } }))).toString()).toBe('456789');
    expect((await readAll(await backend.get('short', { range: { start: 10, end: 10 } }))).length).toBe(0);
  });

  it('never puts a credential into describe() or an error', async () => {
    // A syntactically valid service-account key whose token endpoint is a closed port: the
    // request fails while signing in, where a library is most tempted to echo what it sent.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const secretId = randomBytes(20).toString('hex');
    const dir = await fs.mkdtemp(path.join(tmpdir(), 'strata-gcs-key-'));
    try {
      await fs.writeFile(
        path.join(dir, 'key.json'),
        JSON.stringify({
          type: 'service_account',
          project_id: 'strata-test',
          private_key_id: secretId,
          private_key: pem,
          client_email: 'strata@strata-test.iam.gserviceaccount.com',
          client_id: '1',
          token_uri: `http://127.0.0.1:${await closedPort()}/token`,
        }),
      );
      const cfg = config('keyed', { keyFile: 'key.json', authWithEndpoint: true, timeout: 5 });
      const keyed = await plugin.create(cfg, { configDir: dir });
      const described = keyed.describe();
      const err = await rejection(() => keyed.put('secret/probe', Buffer.from('x')));
      expect(isStrataError(err)).toBe(true);
      const shown = [
        described,
        (err as StrataError).describe(),
        JSON.stringify(err),
        JSON.stringify((err as StrataError).cause),
        String((err as StrataError).cause),
      ];
      const keyBody = pem.split('\n')[1]!;
      for (const text of shown) {
        expect(text).not.toContain(keyBody);
        expect(text).not.toContain(secretId);
        expect(text).not.toMatch(/PRIVATE KEY/);
      }
      expect((err as StrataError).code).toBe('Unavailable');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('redacts tokens a library error might carry, and keeps only message and code of the cause', () => {
    const leaky = Object.assign(new Error('request failed: Authorization: Bearer ya29.a0SECRETTOKEN'), {
      code: 503,
      config: { headers: { Authorization: 'Bearer ya29.a0SECRETTOKEN' } },
    });
    const err = mapGcsError(leaky, { operation: 'put', key: 'k', where: 'gs://b/k' });
    expect(err.code).toBe('Unavailable');
    expect(JSON.stringify({ err, cause: err.cause, message: err.message })).not.toContain('SECRETTOKEN');
  });

  it.each([
    [404, 'NotFound'],
    [412, 'AlreadyExists'],
    [401, 'PermissionDenied'],
    [403, 'PermissionDenied'],
    [429, 'RateLimited'],
    [500, 'Unavailable'],
    [503, 'Unavailable'],
  ] as const)('maps HTTP %i from GCS to %s', (status, code) => {
    const err = mapGcsError(Object.assign(new Error('server said no'), { code: status }), {
      operation: 'put',
      key: 'a/b',
      where: 'gs://b/p/a/b',
    });
    expect(err.code).toBe(code);
    expect(err.message).toContain('put gs://b/p/a/b');
    expect(err.context).toMatchObject({ key: 'a/b', status });
  });

  it('reads the status and network code a resumable upload that gave up puts only in its message', () => {
    const place = { operation: 'put', key: 'k', where: 'gs://b/k' };
    expect(mapGcsError(new Error('Retry limit exceeded - status: 429, statusText: Too Many Requests'), place).code).toBe('RateLimited');
    const reset = mapGcsError(new Error('Retry limit exceeded - request to http://x failed, code: ECONNRESET'), place);
    expect(reset.code).toBe('Unavailable');
    expect(reset.message).toContain('ECONNRESET');
  });

  it.skipIf(emulator !== 'firebase')(
    'still faces an emulator that ignores ifGenerationMatch: 0 (drop the declared gap when this fails)',
    async () => {
      await backend.put('gap/if-none-match', Buffer.from('first'), { ifNoneMatch: true });
      await backend.put('gap/if-none-match', Buffer.from('second'), { ifNoneMatch: true });
      expect((await readAll(await backend.get('gap/if-none-match'))).toString()).toBe('second');
    },
  );

  it('fails at start-up when keyFile cannot be read', async () => {
    const err = await expectStrataError(
      async () => plugin.create(config('nokey', { keyFile: 'missing-key.json' }), { configDir: '/nonexistent' }),
      'ConfigInvalid',
    );
    expect(err.message).toContain('/nonexistent/missing-key.json');
    expect(err.hint).toMatch(/Application Default Credentials/);
  });
});

describe('gcs config', () => {
  const parse = (data: unknown) => parsePluginConfig(gcsConfigSchema, data, ['repos', 0], 'strata.yaml');
  const invalid = (data: unknown) => {
    try {
      parse(data);
    } catch (err) {
      expect((err as StrataError).code).toBe('ConfigInvalid');
      return (err as StrataError).message;
    }
    return expect.fail('config was accepted');
  };

  it('defaults what it can', () => {
    expect(parse({ bucket: 'my-backups' })).toEqual({ bucket: 'my-backups', prefix: '', timeout: 60 });
  });

  it('accepts every documented key', () => {
    const all = {
      bucket: 'my.backups_1',
      prefix: 'strata/prod/',
      projectId: 'acme-prod',
      keyFile: '/etc/strata/gcs-key.json',
      apiEndpoint: 'https://storage.example.internal',
      authWithEndpoint: true,
      storageClass: 'NEARLINE',
      uploadChunkSize: 16 * 1024 * 1024,
      timeout: 120,
    };
    expect(parse(all)).toEqual(all);
  });

  it.each([
    [{}, 'repos[0].bucket: bucket is required'],
    [{ bucket: 'gs://my-backups' }, 'without "gs://"'],
    [{ bucket: 'My_Backups' }, 'not a GCS bucket name'],
    [{ bucket: 'b1', prefix: '/abs' }, 'repos[0].prefix: prefix must be a relative path'],
    [{ bucket: 'b1', prefix: 'a//b' }, 'prefix must be a relative path'],
    [{ bucket: 'b1', prefix: 'a/../b' }, 'prefix must be a relative path'],
    [{ bucket: 'b1', storageClass: 'GLACIER' }, 'storageClass must be one of STANDARD, NEARLINE, COLDLINE, ARCHIVE'],
    [{ bucket: 'b1', uploadChunkSize: 1_000_000 }, 'multiple of 262144'],
    [{ bucket: 'b1', uploadChunkSize: 4096 }, 'at least 262144'],
    [{ bucket: 'b1', apiEndpoint: 'storage.example.internal' }, 'apiEndpoint must be an http(s) URL'],
    [{ bucket: 'b1', apiEndpoint: 'https://user:pw@storage.example.internal' }, 'must not carry credentials'],
    [{ bucket: 'b1', timeout: 0 }, 'timeout is in seconds'],
    [{ bucket: 'b1', bukcet: 'typo' }, 'bukcet'],
  ])('rejects %j', (data, message) => {
    expect(invalid(data)).toContain(message);
  });

  it('does not echo a rejected apiEndpoint with credentials', () => {
    expect(invalid({ bucket: 'b1', apiEndpoint: 'https://user:hunter2@storage.example.internal' })).not.toContain('hunter2');
  });
});
