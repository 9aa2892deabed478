import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import {
  BlobServiceClient,
  ContainerSASPermissions,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
} from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIssues, type StrataError } from '@strata/core';
import { expectStrataError, readAll, runStorageConformance, sha256, sha256Of, slowStream } from '@strata/core/testing';
import { requireEnv } from '@strata/test-servers';
import plugin, { AzureBackend, azureConfigSchema, type AzureConfigInput } from './index.js';

const endpoint = requireEnv('STRATA_TEST_AZURE_ENDPOINT');
const account = requireEnv('STRATA_TEST_AZURE_ACCOUNT');
const accountKey = requireEnv('STRATA_TEST_AZURE_KEY');
const container = requireEnv('STRATA_TEST_AZURE_CONTAINER');
const connectionString = requireEnv('STRATA_TEST_AZURE_CONNECTION_STRING');

/** Every object of this run lives under its own prefix, so runs can share a container. */
const runPrefix = `test-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
const sharedKey = new StorageSharedKeyCredential(account, accountKey);
const service = new BlobServiceClient(endpoint, sharedKey);

function backend(config: Partial<AzureConfigInput> & { prefix: string }): AzureBackend {
  return new AzureBackend(azureConfigSchema.parse({ container, endpoint, account, accountKey, ...config }));
}

/** Issues of a config that fails validation, as the user sees them. */
function configErrors(config: Record<string, unknown>): string {
  const parsed = azureConfigSchema.safeParse(config);
  expect(parsed.success, 'expected the config to be rejected').toBe(false);
  return formatIssues(parsed.error!, ['repos', 0]);
}

function sas(permissions: string, expiresOn = new Date(Date.now() + 3600_000)): string {
  return generateBlobSASQueryParameters(
    { containerName: container, permissions: ContainerSASPermissions.parse(permissions), expiresOn },
    sharedKey,
  ).toString();
}

/** The text a user or a log could ever see of an error. */
function everythingShown(err: StrataError): string {
  return [err.message, err.hint ?? '', JSON.stringify(err.context), inspect(err, { depth: 10 }), JSON.stringify(err)].join('\n');
}

function expectNoSecret(text: string, ...secrets: string[]): void {
  for (const s of secrets) expect(text).not.toContain(s);
  expect(text).not.toMatch(/sig=|AccountKey=/i);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// Paging is proven with a page smaller than the kit's 1100 keys (Azure's default page is 5000).
runStorageConformance(
  'azure',
  async () => ({
    backend: new AzureBackend(azureConfigSchema.parse({ container, endpoint, account, accountKey, prefix: `${runPrefix}/kit` }), {
      listPageSize: 1000,
    }),
  }),
  { largeObjectTimeout: 300_000 },
);

describe('AzureBackend', () => {
  const azure = backend({ prefix: `${runPrefix}/extras` });
  const blobName = (key: string) => `${runPrefix}/extras/${key}`;

  afterAll(async () => {
    const left: string[] = [];
    for await (const o of azure.list('')) left.push(o.key);
    await azure.delete(left);
  });

  it('is the plugin the agent loads as "azure"', () => {
    expect(plugin).toMatchObject({ name: 'azure', kind: 'storage' });
    expect(plugin.create(azureConfigSchema.parse({ container, endpoint, account, accountKey }), { configDir: '/' })).toBeInstanceOf(
      AzureBackend,
    );
  });

  it('stores objects under the prefix as block blobs with their tags as blob index tags', async () => {
    const tags = { cluster: `c-${runPrefix}`, kind: 'wal', label: '20261122-035607F' };
    await azure.put('native/tagged', Buffer.from('tagged'), { tags });
    const blob = service.getContainerClient(container).getBlobClient(blobName('native/tagged'));
    expect((await blob.getProperties()).blobType).toBe('BlockBlob');
    expect((await blob.getTags()).tags).toEqual(tags);
    expect((await azure.head('native/tagged'))?.tags).toEqual(tags);
    const found: string[] = [];
    for await (const b of service.findBlobsByTags(`"cluster"='c-${runPrefix}' AND "kind"='wal'`)) found.push(b.name);
    expect(found).toEqual([blobName('native/tagged')]);
  });

  it('sets blob index tags on a streamed upload too', async () => {
    const tags = { cluster: 'main', kind: 'backup' };
    await azure.put(
      'native/streamed',
      slowStream(() => undefined, 20),
      { tags },
    );
    expect((await service.getContainerClient(container).getBlobClient(blobName('native/streamed')).getTags()).tags).toEqual(tags);
  });

  it('reports no tags for an untagged object, and none at all with indexTags off', async () => {
    await azure.put('native/untagged', Buffer.from('x'));
    expect((await azure.head('native/untagged'))?.tags).toEqual({});
    const plain = backend({ prefix: `${runPrefix}/extras`, indexTags: false });
    expect(plain.capabilities.tags).toBe(false);
    await plain.put('native/no-index', Buffer.from('x'), { tags: { cluster: 'main' } });
    expect((await service.getContainerClient(container).getBlobClient(blobName('native/no-index')).getTags()).tags).toEqual({});
  });

  it('refuses a tag Azure cannot store with a clear InvalidArgument', async () => {
    const err = await expectStrataError(() => azure.put('native/bad-tag', Buffer.from('x'), { tags: { 'what?': 'x' } }), 'InvalidArgument');
    expect(err.message).toContain('what?');
    expect(await azure.head('native/bad-tag')).toBeUndefined();
  });

  it('writes new blobs in the configured access tier', async () => {
    const cool = backend({ prefix: `${runPrefix}/extras`, accessTier: 'Cool' });
    await cool.put('tier/buffer', Buffer.from('cool'));
    await cool.put(
      'tier/stream',
      slowStream(() => undefined, 5),
    );
    for (const key of ['tier/buffer', 'tier/stream']) {
      expect((await service.getContainerClient(container).getBlobClient(blobName(key)).getProperties()).accessTier).toBe('Cool');
    }
  });

  it('refuses to replace an existing object with a streamed conditional create', async () => {
    await azure.put('conditional/stream', Buffer.from('original'));
    const body = slowStream(() => undefined, 100);
    await expectStrataError(() => azure.put('conditional/stream', body, { ifNoneMatch: true }), 'AlreadyExists');
    expect((await readAll(await azure.get('conditional/stream'))).toString()).toBe('original');
  });

  it('commits nothing of a streamed upload whose source fails', async () => {
    const body = slowStream((n) => {
      if (n === 300) body.destroy(new Error('disk read failed'));
    }, 1000);
    const err = await expectStrataError(() => azure.put('failed/stream', body), 'Unavailable');
    expect(err.message).toBe('put of "failed/stream" failed: reading its data failed: disk read failed');
    expect(await azure.head('failed/stream')).toBeUndefined();
  });

  it('reads a range of a multi-block object', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const small = backend({ prefix: `${runPrefix}/extras`, blockSize: 1024 * 1024 });
    await small.put('blocks/object', Readable.from([data]));
    const range = { start: 1024 * 1024 - 5, end: 2 * 1024 * 1024 + 5 };
    expect(sha256(await readAll(await small.get('blocks/object', { range })))).toBe(sha256(data.subarray(range.start, range.end)));
    expect(await sha256Of(await small.get('blocks/object'))).toBe(sha256(data));
    await expectStrataError(() => small.get('blocks/missing', { range: { start: 3, end: 3 } }), 'NotFound');
  });

  describe('authentication', () => {
    it('works with a connection string, read from an environment variable', async () => {
      const viaEnv = new AzureBackend(
        azureConfigSchema.parse({ container, prefix: `${runPrefix}/extras`, connectionStringEnv: 'STRATA_TEST_AZURE_CONNECTION_STRING' }),
      );
      await viaEnv.put('auth/cs', Buffer.from('via connection string'));
      expect((await readAll(await azure.get('auth/cs'))).toString()).toBe('via connection string');
      expect(viaEnv.describe()).toBe(`azure://${account}/${container}/${runPrefix}/extras`);
    });

    it('works with an account key from an environment variable', async () => {
      const viaEnv = new AzureBackend(
        azureConfigSchema.parse({ container, endpoint, account, accountKeyEnv: 'STRATA_TEST_AZURE_KEY', prefix: `${runPrefix}/extras` }),
      );
      await viaEnv.put('auth/key-env', Buffer.from('k'));
      expect((await azure.head('auth/key-env'))?.size).toBe(1);
    });

    it('works with a SAS token, and maps a read-only token to PermissionDenied without showing it', async () => {
      const token = sas('racwdlt');
      const viaSas = backend({ prefix: `${runPrefix}/extras`, account: undefined, accountKey: undefined, sasToken: `?${token}` });
      await viaSas.put('auth/sas', Buffer.from('sas'), { tags: { kind: 'wal' } });
      expect((await viaSas.head('auth/sas'))?.tags).toEqual({ kind: 'wal' });
      const keys: string[] = [];
      for await (const o of viaSas.list('auth/')) keys.push(o.key);
      expect(keys).toContain('auth/sas');
      expect(viaSas.describe()).toBe(`azure://${account}/${container}/${runPrefix}/extras`);

      const readOnlyToken = sas('rl');
      const readOnly = backend({ prefix: `${runPrefix}/extras`, account: undefined, accountKey: undefined, sasToken: readOnlyToken });
      expect((await readAll(await readOnly.get('auth/sas'))).toString()).toBe('sas');
      const err = await expectStrataError(() => readOnly.put('auth/sas-denied', Buffer.from('x')), 'PermissionDenied');
      expect(err.message).toContain('auth/sas-denied');
      expect(err.message).toContain(container);
      expect(err.hint).toMatch(/SAS token/);
      expectNoSecret(everythingShown(err), readOnlyToken, readOnlyToken.replace(/^.*sig=/, ''));
    });

    it('maps an expired SAS token to PermissionDenied', async () => {
      const expired = sas('racwdl', new Date(Date.now() - 3600_000));
      const err = await expectStrataError(
        () => backend({ prefix: `${runPrefix}/extras`, account: undefined, accountKey: undefined, sasToken: expired }).head('auth/sas'),
        'PermissionDenied',
      );
      expectNoSecret(everythingShown(err), expired);
    });

    it('maps a wrong account key to PermissionDenied, naming container and key but not the key material', async () => {
      const wrongKey = randomBytes(64).toString('base64');
      const wrong = backend({ prefix: `${runPrefix}/extras`, accountKey: wrongKey });
      const err = await expectStrataError(() => wrong.put('auth/wrong-key', Buffer.from('x')), 'PermissionDenied');
      // Azurite answers AuthorizationFailure where Azure says AuthenticationFailed.
      expect(err.message).toMatch(
        /^put of "auth\/wrong-key" in Azure container "strata-test" was refused \(403 (AuthorizationFailure|AuthenticationFailed)\)$/,
      );
      expect(err.retryable).toBe(false);
      expectNoSecret(everythingShown(err), wrongKey, accountKey);
      await expectStrataError(() => wrong.get('auth/cs'), 'PermissionDenied');
      await expectStrataError(() => wrong.head('auth/cs'), 'PermissionDenied');
    });
  });

  describe('unreachable or missing places', () => {
    it('maps an endpoint on a closed port to Unavailable, retryable', async () => {
      const port = await freePort();
      const closed = backend({ prefix: 'x', endpoint: `http://127.0.0.1:${port}/${account}`, maxTries: 2 });
      const err = await expectStrataError(() => closed.put('a/b', Buffer.from('x')), 'Unavailable');
      expect(err.retryable).toBe(true);
      expect(err.message).toContain(`127.0.0.1:${port}/${account}`);
      expect(err.message).toContain('ECONNREFUSED');
      expectNoSecret(everythingShown(err), accountKey);
      await expectStrataError(() => closed.head('a/b'), 'Unavailable');
      await expectStrataError(async () => {
        for await (const o of closed.list('a/')) void o;
      }, 'Unavailable');
    });

    describe('a server that accepts connections and never answers', () => {
      let silent: Server;
      let port: number;
      const sockets = new Set<Socket>();
      beforeAll(async () => {
        silent = createServer((socket) => sockets.add(socket));
        await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
        port = (silent.address() as { port: number }).port;
      });
      afterAll(async () => {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      });

      it('times out after "timeout" seconds per request with Timeout', async () => {
        const hung = backend({ prefix: 'x', endpoint: `http://127.0.0.1:${port}/${account}`, timeout: 0.5, maxTries: 1 });
        const started = Date.now();
        const err = await expectStrataError(() => hung.head('a/b'), 'Timeout');
        expect(Date.now() - started).toBeLessThan(5_000);
        expect(err.retryable).toBe(true);
        expect(err.message).toContain('0.5 s');
      });
    });

    it('maps a missing container to NotFound with a hint, also for head and list', async () => {
      const missing = backend({ prefix: 'x', container: 'no-such-container' });
      const err = await expectStrataError(() => missing.put('a/b', Buffer.from('x')), 'NotFound');
      expect(err.message).toContain('no-such-container');
      expect(err.hint).toMatch(/create container "no-such-container"/);
      await expectStrataError(() => missing.head('a/b'), 'NotFound');
      await expectStrataError(async () => {
        for await (const o of missing.list('')) void o;
      }, 'NotFound');
    });
  });

  describe('config', () => {
    const base = { container, endpoint };

    it('requires exactly one way to authenticate', () => {
      expect(configErrors(base)).toContain('no credentials: set exactly one of connectionString(Env), accountKey(Env)');
      expect(configErrors({ ...base, account, accountKey, sasToken: 'sv=x&sig=y' })).toContain(
        'choose one way to authenticate, got accountKey and sasToken',
      );
      expect(configErrors({ ...base, account, accountKey, accountKeyEnv: 'X' })).toContain(
        'repos[0].accountKeyEnv: give accountKey or accountKeyEnv, not both',
      );
      expect(configErrors({ ...base, accountKey })).toContain('repos[0].account: required with accountKey');
      expect(configErrors({ container, sasToken: 'sv=x&sig=y' })).toContain('repos[0].endpoint: sasToken needs account or endpoint');
      expect(configErrors({ container, connectionString, account })).toContain('repos[0].account: not used with connectionString');
    });

    it('names an unset environment variable and a malformed connection string without echoing secrets', () => {
      expect(configErrors({ ...base, account, accountKeyEnv: 'STRATA_TEST_NO_SUCH_VARIABLE' })).toContain(
        'repos[0].accountKeyEnv: environment variable STRATA_TEST_NO_SUCH_VARIABLE is not set',
      );
      const bad = 'AccountName=acct;Secret=hunter2hunter2';
      const message = configErrors({ container, connectionString: bad });
      expect(message).toContain('repos[0].connectionString: the connection string has neither AccountKey nor SharedAccessSignature');
      expect(message).not.toContain('hunter2');
    });

    it('checks names, sizes and unknown keys', () => {
      const ok = { ...base, account, accountKey };
      expect(configErrors({ ...ok, container: 'Bad_Name' })).toContain('repos[0].container: must be a container name');
      expect(configErrors({ ...ok, prefix: 'a/../b' })).toContain('repos[0].prefix');
      expect(configErrors({ ...ok, endpoint: 'ftp://x' })).toContain('repos[0].endpoint');
      expect(configErrors({ ...ok, endpoint: `${endpoint}?sv=1&sig=2` })).toContain('must not carry a query string');
      expect(configErrors({ ...ok, blockSize: 1000 })).toContain('repos[0].blockSize: must be at least 1 MiB');
      expect(configErrors({ ...ok, accessTier: 'Frozen' })).toContain('repos[0].accessTier');
      expect(configErrors({ ...ok, acountKey: 'typo' })).toMatch(/Unrecognized key.*acountKey/);
      expect(azureConfigSchema.parse({ ...ok, prefix: '/a/b/' })).toMatchObject({
        prefix: 'a/b',
        blockSize: 4 * 1024 * 1024,
        uploadConcurrency: 4,
      });
    });

    it('describes every kind of repository without secrets', () => {
      const cases: [AzureConfigInput, string][] = [
        [{ container, account: 'prodacct', accountKey }, 'azure://prodacct/strata-test'],
        [{ container, prefix: 'pg/main', connectionString }, `azure://${account}/strata-test/pg/main`],
        [
          { container, endpoint: 'https://prodacct.blob.core.windows.net', sasToken: 'sv=2024&sig=SECRETSIG' },
          'azure://prodacct/strata-test',
        ],
        [
          {
            container,
            connectionString:
              'DefaultEndpointsProtocol=https;AccountName=govacct;AccountKey=SECRETKEY;EndpointSuffix=core.usgovcloudapi.net',
          },
          'azure://govacct/strata-test',
        ],
      ];
      for (const [config, expected] of cases) {
        const described = new AzureBackend(azureConfigSchema.parse(config)).describe();
        expect(described).toBe(expected);
        expectNoSecret(described, accountKey, 'SECRETSIG', 'SECRETKEY');
      }
    });
  });
});
