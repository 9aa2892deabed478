import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { inspect } from 'node:util';
import { GetObjectTaggingCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStrataError, type StrataError } from '@strata/core';
import { MiB, expectStrataError, generatedStream, readAll, rejection, runStorageConformance, sha256, sha256Of } from '@strata/core/testing';
import { requireEnv } from '@strata/test-servers';
import { S3Backend } from './S3Backend.js';
import plugin, { s3ConfigSchema } from './index.js';

// The AWS SDK warns once per process under Node 20; the plugin silences it the same way.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** The RGW the global setup started (packages/test-servers/src/rgw.ts). */
function server() {
  return {
    bucket: requireEnv('STRATA_TEST_S3_BUCKET'),
    endpoint: requireEnv('STRATA_TEST_S3_ENDPOINT'),
    region: requireEnv('STRATA_TEST_S3_REGION'),
    forcePathStyle: true,
    credentials: {
      accessKeyId: requireEnv('STRATA_TEST_S3_ACCESS_KEY_ID'),
      secretAccessKey: requireEnv('STRATA_TEST_S3_SECRET_ACCESS_KEY'),
    },
  };
}

const uniquePrefix = (what: string) => `strata-test/${what}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;

function backend(overrides: Record<string, unknown> = {}): S3Backend {
  return new S3Backend(s3ConfigSchema.parse({ ...server(), prefix: uniquePrefix('s3'), ...overrides }));
}

/** A client of our own, to look at what the plugin stored with S3's own API. */
function rawClient(): S3Client {
  const s = server();
  return new S3Client({ ...s, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
}

/** Everything a user or a log could see of an error. */
function visible(err: StrataError): string {
  return [err.message, err.hint ?? '', JSON.stringify(err.context), err.describe(), inspect(err, { depth: 6 })].join('\n');
}

runStorageConformance('s3', async () => ({ backend: backend({ prefix: uniquePrefix('conformance') }) }), {
  largeObjectTimeout: 300_000,
});

describe('S3Backend against Ceph RGW', () => {
  const raw = rawClient();
  let s3: S3Backend;
  let prefix: string;

  beforeAll(() => {
    prefix = uniquePrefix('extras');
    s3 = backend({ prefix, partSize: 5 * MiB, queueSize: 2 });
  });

  afterAll(async () => {
    const left: string[] = [];
    for await (const o of s3.list('')) left.push(o.key);
    await s3.delete(left);
    await s3.close();
    raw.destroy();
  });

  it('is the plugin the agent loads as "s3"', () => {
    expect(plugin.name).toBe('s3');
    expect(plugin.kind).toBe('storage');
    expect(plugin.create(s3ConfigSchema.parse(server()), { configDir: '/' })).toBeInstanceOf(S3Backend);
  });

  it('keeps objects under the configured prefix and lists keys relative to it', async () => {
    await s3.put('c/obj', Buffer.from('x'));
    const out = await raw.send(new ListObjectsV2Command({ Bucket: server().bucket, Prefix: `${prefix}/` }));
    expect(out.Contents?.map((o) => o.Key)).toEqual([`${prefix}/c/obj`]);
    const listed: string[] = [];
    for await (const o of s3.list('c/')) listed.push(o.key);
    expect(listed).toEqual(['c/obj']);
  });

  it('stores tags as native S3 object tags, for single and multipart uploads', async () => {
    const tags = { cluster: 'main', kind: 'backup', label: '20261122-040000F', role: 'object offsite' };
    await s3.put('tags/single', Buffer.from('x'), { tags });
    const { stream } = generatedStream(12 * MiB);
    await s3.put('tags/multipart', stream, { tags });
    for (const key of ['tags/single', 'tags/multipart']) {
      const out = await raw.send(new GetObjectTaggingCommand({ Bucket: server().bucket, Key: `${prefix}/${key}` }));
      expect(Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key, t.Value])), key).toEqual(tags);
      expect((await s3.head(key))?.tags).toEqual(tags);
    }
  });

  it('sends no tags when tagging is turned off, and says so in its capabilities', async () => {
    const untagged = backend({ prefix, tags: false });
    expect(untagged.capabilities.tags).toBe(false);
    await untagged.put('notags/object', Buffer.from('x'), { tags: { kind: 'wal' } });
    const out = await raw.send(new GetObjectTaggingCommand({ Bucket: server().bucket, Key: `${prefix}/notags/object` }));
    expect(out.TagSet ?? []).toEqual([]);
    expect(await untagged.head('notags/object')).toMatchObject({ key: 'notags/object', size: 1 });
  });

  it('creates a multipart-sized stream only if absent (spooled to one conditional PutObject)', async () => {
    const spoolsBefore = (await readdir(tmpdir())).filter((n) => n.startsWith('strata-s3-')).length;
    const first = generatedStream(12 * MiB);
    await s3.put('cond/stream', first.stream, { ifNoneMatch: true });
    const second = generatedStream(12 * MiB);
    await expectStrataError(() => s3.put('cond/stream', second.stream, { ifNoneMatch: true }), 'AlreadyExists');
    expect(await sha256Of(await s3.get('cond/stream'))).toBe(first.sha256);
    expect((await readdir(tmpdir())).filter((n) => n.startsWith('strata-s3-')).length).toBe(spoolsBefore);
  });

  it('leaves neither an object nor multipart parts when a multipart upload is aborted', async () => {
    const controller = new AbortController();
    const { stream } = generatedStream(64 * MiB);
    let sent = 0;
    stream.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      // Past two parts: the multipart upload exists and has parts when the abort comes.
      if (sent > 12 * MiB && !controller.signal.aborted) controller.abort();
    });
    await expectStrataError(() => s3.put('abort/multipart', stream, { signal: controller.signal }), 'Aborted');
    expect(await s3.head('abort/multipart')).toBeUndefined();
    const uploads = await raw.send(new ListMultipartUploadsCommand({ Bucket: server().bucket, Prefix: `${prefix}/abort/` }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });

  it('reads a range at the end of an 11 MiB object, and nothing past its end', async () => {
    const data = randomBytes(11 * MiB);
    await s3.put('range/large', Buffer.from(data));
    const got = await readAll(await s3.get('range/large', { range: { start: 10 * MiB, end: 11 * MiB } }));
    expect(sha256(got)).toBe(sha256(data.subarray(10 * MiB)));
    expect((await readAll(await s3.get('range/large', { range: { start: 11 * MiB } }))).length).toBe(0);
  });

  it('deletes more keys than one DeleteObjects request takes', async () => {
    const keys = Array.from({ length: 1003 }, (_, i) => `bulk/${i}`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => s3.put(k, Buffer.from(k))));
    await s3.delete([...keys, 'bulk/never-written']);
    const listed: string[] = [];
    for await (const o of s3.list('bulk/')) listed.push(o.key);
    expect(listed).toEqual([]);
  }, 120_000);

  it('maps a wrong secret to PermissionDenied without showing the secret', async () => {
    const secret = `wrong-${randomBytes(12).toString('hex')}`;
    const bad = backend({ credentials: { accessKeyId: server().credentials.accessKeyId, secretAccessKey: secret } });
    for (const call of [() => bad.put('x', Buffer.from('x')), () => bad.get('x'), () => bad.list('')[Symbol.asyncIterator]().next()]) {
      const err = await expectStrataError(async () => call(), 'PermissionDenied');
      expect(err.message).toMatch(/SignatureDoesNotMatch \(HTTP 403\)/);
      expect(err.message).toContain(`bucket "${server().bucket}"`);
      expect(err.retryable).toBe(false);
      expect(visible(err)).not.toContain(secret);
    }
    expect(bad.describe()).not.toContain(secret);
  });

  it('maps an unknown access key to PermissionDenied', async () => {
    const bad = backend({ credentials: { accessKeyId: 'NOSUCHKEY', secretAccessKey: 'irrelevant' } });
    const err = await expectStrataError(() => bad.head('x'), 'PermissionDenied');
    expect(err.hint).toMatch(/credentials/);
  });

  it('maps an endpoint nobody listens on to a retryable Unavailable', async () => {
    const closed = backend({ endpoint: 'http://127.0.0.1:1', maxAttempts: 1 });
    for (const call of [() => closed.put('k/x', Buffer.from('x')), () => closed.get('k/x'), () => closed.head('k/x')]) {
      const err = await expectStrataError(call, 'Unavailable');
      expect(err.retryable).toBe(true);
      expect(err.message).toMatch(/ECONNREFUSED/);
      expect(err.message).toContain('k/x');
    }
  });

  it('maps a missing bucket to ConfigInvalid with a hint naming it', async () => {
    const err = await expectStrataError(() => backend({ bucket: 'no-such-bucket-here' }).put('x', Buffer.from('x')), 'ConfigInvalid');
    expect(err.message).toMatch(/NoSuchBucket/);
    expect(err.hint).toContain('create bucket "no-such-bucket-here"');
  });

  it('describes itself by bucket, prefix and endpoint, never by credentials', () => {
    const d = s3.describe();
    expect(d).toBe(`s3://${server().bucket}/${prefix}/ (${server().endpoint})`);
    expect(d).not.toContain(server().credentials.secretAccessKey);
    expect(d).not.toContain(server().credentials.accessKeyId);
  });
});

describe('s3 configuration', () => {
  const issues = (input: unknown): string => {
    const r = s3ConfigSchema.safeParse(input);
    expect(r.success, 'expected the config to be rejected').toBe(false);
    return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
  };

  it('applies defaults and normalises the prefix', () => {
    expect(s3ConfigSchema.parse({ bucket: 'backups', prefix: '/pg/prod/' })).toMatchObject({
      bucket: 'backups',
      prefix: 'pg/prod',
      forcePathStyle: false,
      tags: true,
      partSize: 8 * MiB,
      queueSize: 4,
      requestTimeout: 60,
      connectTimeout: 10,
      maxAttempts: 3,
    });
  });

  it('rejects bad values with messages that say what is expected', () => {
    expect(issues({})).toMatch(/bucket: bucket is required/);
    expect(issues({ bucket: 'Bad_Bucket' })).toMatch(/bucket: bucket must be a bucket name/);
    expect(issues({ bucket: 'b1b', prefix: 'a//b' })).toMatch(/prefix: prefix must be a path/);
    expect(issues({ bucket: 'b1b', partSize: 1024 })).toMatch(/partSize: partSize must be at least 5 MiB/);
    expect(issues({ bucket: 'b1b', sse: 'aes' })).toMatch(/sse: sse must be "AES256" or "aws:kms"/);
    expect(issues({ bucket: 'b1b', sse: 'AES256', kmsKeyId: 'k' })).toMatch(/kmsKeyId: kmsKeyId needs sse: aws:kms/);
    expect(issues({ bucket: 'b1b', endpoint: 'ftp://x' })).toMatch(/endpoint: endpoint must be an http/);
    expect(issues({ bucket: 'b1b', endpoint: 'http://user:pw@host' })).toMatch(/endpoint must not contain credentials/);
    expect(issues({ bucket: 'b1b', storageClass: 'cheap' })).toMatch(/storageClass/);
    expect(issues({ bucket: 'b1b', buckett: 'typo' })).toMatch(/buckett/);
  });

  it('never repeats a secret in a validation message', () => {
    const secret = `s3cr3t-${randomBytes(8).toString('hex')}`;
    const text = issues({
      bucket: 'b1b',
      credentials: { accessKeyId: 'AK', secretAccessKey: secret, sessionTokn: secret },
      partSize: secret,
    });
    expect(text).toMatch(/sessionTokn/);
    expect(text).not.toContain(secret);
  });

  it('refuses an invalid key before sending anything', async () => {
    const s3 = new S3Backend(s3ConfigSchema.parse({ bucket: 'b1b', endpoint: 'http://127.0.0.1:1' }));
    const err = await rejection(() => s3.put('a/../b', Buffer.from('x')));
    expect(isStrataError(err) && err.code).toBe('InvalidArgument');
  });
});
