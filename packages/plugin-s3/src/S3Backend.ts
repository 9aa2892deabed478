import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
  type StorageClass,
} from '@aws-sdk/client-s3';
import {
  StrataError,
  type GetOptions,
  type ObjectInfo,
  type PutOptions,
  type StorageBackend,
  type StorageCapabilities,
  type Tags,
} from '@strata/core';
import type { S3Config } from './index.js';
import { mapS3Error, type Where } from './errors.js';
import { retrying, uploadStream } from './multipart.js';

/** The most one PutObject request may carry. */
const MAX_SINGLE_PUT = 5 * 1024 ** 3;
const DELETE_BATCH = 1000;

/**
 * A repository in an S3 bucket under a key prefix. Buffers go up in one PutObject; streams in a
 * multipart upload holding at most queueSize + 1 parts in memory (multipart.ts). Conditional
 * creates (ifNoneMatch) are always single PutObject requests with `If-None-Match: *`: some
 * S3-compatible stores ignore that header on CompleteMultipartUpload (see put()).
 */
export class S3Backend implements StorageBackend {
  readonly capabilities: StorageCapabilities;
  private readonly client: S3Client;
  private readonly prefix: string;

  constructor(private readonly config: S3Config) {
    // The SDK warns on every start under Node 20 (supported until 2027); archive-push runs once
    // per WAL segment and its stderr lands in the PostgreSQL log.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.prefix = config.prefix === '' ? '' : `${config.prefix}/`;
    this.capabilities = { readWithRange: true, writeIfNotExists: true, tags: config.tags, listMaxKeys: 1000 };
    this.client = new S3Client({
      region: config.region ?? (config.endpoint ? 'us-east-1' : undefined),
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle,
      credentials: config.credentials,
      maxAttempts: config.maxAttempts,
      // Plain bodies: S3-compatible stores reject or mis-store aws-chunked uploads with trailers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The SDK's default logger is the console; a library must not write there.
      logger: silentLogger,
      requestHandler: { connectionTimeout: config.connectTimeout * 1000, requestTimeout: config.requestTimeout * 1000 },
    });
  }

  describe(): string {
    const where = `s3://${this.config.bucket}/${this.prefix}`;
    if (this.config.endpoint) return `${where} (${this.config.endpoint})`;
    return this.config.region ? `${where} (${this.config.region})` : where;
  }

  async put(key: string, body: Buffer | Readable, options: PutOptions = {}): Promise<void> {
    const where = this.where('put', key);
    const params = this.putParams(this.objectKey(key, where), options);
    if (options.signal?.aborted) throw aborted(where);
    try {
      if (Buffer.isBuffer(body)) {
        await this.client.send(new PutObjectCommand({ ...params, Body: body, ContentLength: body.length }), {
          abortSignal: options.signal,
        });
      } else if (options.ifNoneMatch) {
        await this.putStreamConditional(params, body, options.signal, where);
      } else {
        await this.putMultipart(params, body, options);
      }
    } catch (err) {
      if (!Buffer.isBuffer(body)) body.destroy();
      if (options.signal?.aborted) throw aborted(where, err);
      throw this.mapError(err, where);
    }
  }

  /**
   * A stream of unknown length, created only if absent. Ceph RGW (16) ignores If-None-Match on
   * CompleteMultipartUpload, so a multipart upload could replace an object. Instead the stream
   * is spooled to a temporary file and sent as one conditional PutObject (≤ 5 GiB): atomic on
   * every store, and memory stays flat. Strata itself only creates objects from Buffers.
   */
  private async putStreamConditional(params: PutObjectCommandInput, body: Readable, signal: AbortSignal | undefined, where: Where) {
    const dir = await fs.mkdtemp(path.join(tmpdir(), 'strata-s3-'));
    try {
      const file = path.join(dir, 'body');
      await pipeline(body, createWriteStream(file, { mode: 0o600 }), { signal });
      const { size } = await fs.stat(file);
      if (size > MAX_SINGLE_PUT) {
        throw new StrataError(
          'InvalidArgument',
          `${where.text}: a conditional create of ${size} bytes exceeds the 5 GiB of one PutObject`,
          {
            operation: where.operation,
            context: where.context,
          },
        );
      }
      await retrying(
        () =>
          this.client.send(new PutObjectCommand({ ...params, Body: createReadStream(file), ContentLength: size }), { abortSignal: signal }),
        this.config.maxAttempts,
        signal,
      );
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }

  private async putMultipart(params: PutObjectCommandInput, body: Readable, options: PutOptions): Promise<void> {
    const tags = options.tags && this.config.tags ? Object.entries(options.tags).map(([Key, Value]) => ({ Key, Value })) : undefined;
    await uploadStream(this.client, params, body, {
      partSize: this.config.partSize,
      queueSize: this.config.queueSize,
      maxAttempts: this.config.maxAttempts,
      signal: options.signal,
      tags,
    });
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const where = this.where('get', key);
    const objectKey = this.objectKey(key, where);
    const { range } = options;
    if (range && range.end !== undefined && range.end <= range.start) {
      // An empty range cannot be expressed in HTTP; the object must still exist.
      if (!(await this.headObject(key, objectKey, where))) throw notFound(where);
      return Readable.from([]);
    }
    const header =
      range && (range.start > 0 || range.end !== undefined)
        ? `bytes=${range.start}-${range.end === undefined ? '' : range.end - 1}`
        : undefined;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: objectKey, Range: header }), {
        abortSignal: options.signal,
      });
      if (!(out.Body instanceof Readable)) throw new StrataError('Internal', `${where.text}: the response has no body stream`);
      return out.Body;
    } catch (err) {
      const mapped = this.mapError(err, where);
      // 416: the range starts at or past the end of an existing object; like Buffer#subarray, empty.
      if (mapped.context.status === 416) return Readable.from([]);
      throw mapped;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const where = this.where('head', key);
    const objectKey = this.objectKey(key, where);
    const [info, tags] = await Promise.all([
      this.headObject(key, objectKey, where),
      this.config.tags ? this.getTags(objectKey, where) : Promise.resolve(undefined),
    ]);
    if (!info) return undefined;
    return tags ? { ...info, tags } : info;
  }

  private async headObject(key: string, objectKey: string, where: Where): Promise<ObjectInfo | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: objectKey }));
      return { key, size: out.ContentLength ?? 0, mtime: out.LastModified };
    } catch (err) {
      const mapped = this.mapError(err, where);
      if (mapped.code === 'NotFound' && !mapped.context.bucketMissing) return undefined;
      throw mapped;
    }
  }

  private async getTags(objectKey: string, where: Where): Promise<Tags | undefined> {
    try {
      const out = await this.client.send(new GetObjectTaggingCommand({ Bucket: this.config.bucket, Key: objectKey }));
      return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    } catch (err) {
      const mapped = this.mapError(err, { ...where, operation: 'head (tags)' });
      if (mapped.code === 'NotFound' && !mapped.context.bucketMissing) return undefined;
      throw mapped;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const where = this.where('list', prefix);
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.config.bucket,
            Prefix: this.prefix + prefix,
            ContinuationToken: token,
            MaxKeys: this.capabilities.listMaxKeys,
          }),
        );
      } catch (err) {
        throw this.mapError(err, where);
      }
      for (const o of out.Contents ?? []) {
        if (o.Key === undefined || !o.Key.startsWith(this.prefix)) continue;
        yield { key: o.Key.slice(this.prefix.length), size: o.Size ?? 0, mtime: o.LastModified };
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(keys: string[]): Promise<void> {
    // Every key is checked before anything is deleted.
    const objectKeys = keys.map((k) => this.objectKey(k, this.where('delete', k)));
    for (let i = 0; i < objectKeys.length; i += DELETE_BATCH) {
      const batch = objectKeys.slice(i, i + DELETE_BATCH);
      const where = this.where('delete', keys[i]!);
      let out;
      try {
        out = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.config.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
        );
      } catch (err) {
        throw this.mapError(err, where);
      }
      // Quiet mode reports only failures; a key that was already gone is not one.
      const failed = (out.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) {
        const first = failed[0]!;
        const key = first.Key?.slice(this.prefix.length) ?? keys[i]!;
        throw this.mapError(
          Object.assign(new Error(first.Message ?? first.Code ?? 'delete failed'), { name: first.Code ?? 'Error' }),
          this.where('delete', key),
          `${failed.length} of ${batch.length} keys not deleted`,
        );
      }
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private putParams(objectKey: string, options: PutOptions): PutObjectCommandInput {
    const params: PutObjectCommandInput = { Bucket: this.config.bucket, Key: objectKey };
    if (options.ifNoneMatch) params.IfNoneMatch = '*';
    if (options.tags && this.config.tags && Object.keys(options.tags).length > 0) params.Tagging = encodeTags(options.tags);
    if (this.config.storageClass) params.StorageClass = this.config.storageClass as StorageClass;
    if (this.config.sse) params.ServerSideEncryption = this.config.sse;
    if (this.config.kmsKeyId) params.SSEKMSKeyId = this.config.kmsKeyId;
    return params;
  }

  /** The full object key; rejects keys that are not clean relative paths. */
  private objectKey(key: string, where: Where): string {
    if (key === '' || key.startsWith('/') || key.split('/').some((p) => p === '' || p === '.' || p === '..')) {
      throw new StrataError('InvalidArgument', `invalid object key "${key}"`, { operation: where.operation, context: where.context });
    }
    return this.prefix + key;
  }

  private mapError(err: unknown, where: Where, detail?: string): StrataError {
    const c = this.config.credentials;
    return mapS3Error(err, where, detail, c ? [c.secretAccessKey, c.sessionToken ?? ''] : []);
  }

  /** What an error message says about the call: operation, bucket and full key. */
  private where(operation: string, key: string): Where {
    const bucket = this.config.bucket;
    return { operation, text: `s3 ${operation} "${this.prefix + key}" in bucket "${bucket}"`, context: { bucket, key } };
  }
}

const silentLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** The x-amz-tagging header: URL query encoding, "%20" for spaces. */
export function encodeTags(tags: Tags): string {
  return Object.entries(tags)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

function aborted(where: Where, cause?: unknown): StrataError {
  return new StrataError('Aborted', `${where.text} aborted`, { cause, operation: where.operation, context: where.context });
}

function notFound(where: Where): StrataError {
  return new StrataError('NotFound', `${where.text}: no such object`, { operation: where.operation, context: where.context });
}
