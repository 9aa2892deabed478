import * as path from 'node:path';
import { PassThrough, Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage, type Bucket, type File, type FileMetadata, type StorageOptions } from '@google-cloud/storage';
import {
  StrataError,
  type GetOptions,
  type ObjectInfo,
  type PutOptions,
  type StorageBackend,
  type StorageCapabilities,
  type Tags,
} from '@strata/core';
import type { GcsConfig } from './config.js';
import { mapGcsError, statusOf } from './errors.js';

/** Strata's tags live in the object's custom metadata under this prefix, apart from anyone else's keys. */
export const TAG_PREFIX = 'strata-tag-';
const LIST_PAGE = 1000;
const DELETE_CONCURRENCY = 16;
/** GCS object names are at most 1024 bytes of UTF-8. */
const MAX_NAME_BYTES = 1024;

/**
 * A repository in a Google Cloud Storage bucket, under an optional prefix. Buffers go up in one
 * request; streams in a resumable upload (one streaming request, or chunks of uploadChunkSize),
 * so memory stays flat. An object becomes visible only when its upload completes: an aborted or
 * failed upload leaves nothing. Conditional create uses `ifGenerationMatch: 0`.
 */
export class GcsBackend implements StorageBackend {
  readonly capabilities: StorageCapabilities = {
    readWithRange: true,
    writeIfNotExists: true,
    tags: true,
    listMaxKeys: LIST_PAGE,
  };
  readonly bucketName: string;
  /** '' or ending in '/'. */
  readonly prefix: string;
  private readonly bucket: Bucket;
  private readonly config: GcsConfig;

  constructor(config: GcsConfig, configDir: string) {
    this.config = config;
    this.bucketName = config.bucket;
    this.prefix = config.prefix === '' ? '' : `${config.prefix.replace(/\/$/, '')}/`;
    const options: StorageOptions = {
      projectId: config.projectId,
      apiEndpoint: config.apiEndpoint,
      keyFilename: config.keyFile === undefined ? undefined : path.resolve(configDir, config.keyFile),
      useAuthWithCustomEndpoint: config.authWithEndpoint ?? config.keyFile !== undefined,
      timeout: config.timeout * 1000,
      // Strata's Repository retries failed calls with backoff; retrying here too would multiply attempts.
      retryOptions: { autoRetry: false, maxRetries: 0 },
    };
    this.bucket = new Storage(options).bucket(config.bucket);
  }

  describe(): string {
    const where = `gs://${this.bucketName}/${this.prefix}`.replace(/\/$/, '');
    return this.config.apiEndpoint === undefined ? where : `${where} (endpoint ${new URL(this.config.apiEndpoint).origin})`;
  }

  private file(key: string, operation: string): File {
    if (
      key === '' ||
      key.startsWith('/') ||
      key.split('/').some((p) => p === '..' || p === '.' || p === '') ||
      /[\r\n]/.test(key) ||
      Buffer.byteLength(this.prefix + key) > MAX_NAME_BYTES
    ) {
      throw new StrataError('InvalidArgument', `invalid object key "${key}"`, { operation, context: { key } });
    }
    return this.bucket.file(this.prefix + key);
  }

  private fail(err: unknown, operation: string, key: string): StrataError {
    return mapGcsError(err, { operation, key, where: `gs://${this.bucketName}/${this.prefix}${key}` });
  }

  async put(key: string, body: Buffer | Readable, options: PutOptions = {}): Promise<void> {
    const file = this.file(key, 'put');
    const isBuffer = Buffer.isBuffer(body);
    const metadata: FileMetadata = { contentType: 'application/octet-stream' };
    if (this.config.storageClass) metadata.storageClass = this.config.storageClass;
    if (options.tags) metadata.metadata = toCustomMetadata(options.tags);
    const upload = file.createWriteStream({
      // A buffer goes up in one multipart request; a stream in a resumable upload that is
      // finalised only when the whole stream arrived.
      resumable: !isBuffer,
      chunkSize: isBuffer ? undefined : this.config.uploadChunkSize,
      metadata,
      validation: 'crc32c',
      preconditionOpts: options.ifNoneMatch ? { ifGenerationMatch: 0 } : undefined,
    });
    try {
      if (isBuffer) await pipeline(Readable.from(body.length > 0 ? [body] : []), upload, { signal: options.signal });
      else await pipeline(body, this.stallWatch(upload), upload, { signal: options.signal });
    } catch (err) {
      throw this.fail(err, 'put', key);
    }
  }

  /**
   * The client library sets no timeout on resumable-upload requests, so a server that stops
   * answering would hang a streamed put forever. This passes the stream through and fails the
   * upload when neither the source produced nor the upload took a chunk for `timeout` seconds.
   */
  private stallWatch(upload: Writable): Transform {
    const ms = this.config.timeout * 1000;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        upload.destroy(Object.assign(new Error(`no upload progress for ${this.config.timeout} s (ETIMEDOUT)`), { code: 'ETIMEDOUT' }));
      }, ms);
    };
    upload.on('progress', arm).once('close', () => clearTimeout(timer));
    arm();
    return new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        arm();
        callback(null, chunk);
      },
    });
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const file = this.file(key, 'get');
    const { range } = options;
    if (range && range.end !== undefined && range.end <= range.start) {
      // Nothing to read, but a missing object is still an error.
      if (!(await this.head(key))) throw this.fail(Object.assign(new Error('No such object'), { code: 404 }), 'get', key);
      return Readable.from([]);
    }
    // Contract ranges end exclusively, GCS's inclusively. A range from 0 to the end is no range.
    const source = file.createReadStream({
      start: range && range.start > 0 ? range.start : undefined,
      end: range?.end === undefined ? undefined : range.end - 1,
    });
    try {
      return await this.readable(source, key, options.signal);
    } catch (err) {
      // Reading from at or after the end of an object: there are no such bytes.
      if (range && statusOf((err as StrataError).cause) === 416) return Readable.from([]);
      throw err;
    }
  }

  /**
   * Resolves once the server answered with data, so that a missing object rejects get() rather
   * than failing the stream later; later failures reach the consumer as StrataErrors.
   */
  private readable(source: Readable, key: string, signal: AbortSignal | undefined): Promise<Readable> {
    const out = new PassThrough();
    return new Promise((resolve, reject) => {
      let handedOut = false;
      const fail = (err: StrataError) => {
        source.destroy();
        if (handedOut) out.destroy(err);
        else {
          out.destroy();
          reject(err);
        }
      };
      const onAbort = () => fail(new StrataError('Aborted', `get of "${key}" aborted`, { operation: 'get', context: { key } }));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      out.once('close', () => {
        signal?.removeEventListener('abort', onAbort);
        source.destroy();
      });
      source.once('response', (res: { statusCode?: number }) => {
        if (res.statusCode !== undefined && res.statusCode < 300) {
          handedOut = true;
          resolve(out);
        }
      });
      source.once('error', (err) => fail(this.fail(err, 'get', key)));
      source.once('end', () => {
        if (!handedOut) {
          handedOut = true;
          resolve(out);
        }
      });
      source.pipe(out);
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const file = this.file(key, 'head');
    try {
      const [metadata] = await file.getMetadata();
      return toObjectInfo(key, metadata);
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw this.fail(err, 'head', key);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let pageToken: string | undefined;
    do {
      let files: File[];
      let next: { pageToken?: string } | null | undefined;
      try {
        [files, next] = await this.bucket.getFiles({ prefix: this.prefix + prefix, autoPaginate: false, maxResults: LIST_PAGE, pageToken });
      } catch (err) {
        throw this.fail(err, 'list', prefix);
      }
      for (const f of files) yield toObjectInfo(f.name.slice(this.prefix.length), f.metadata);
      pageToken = next?.pageToken;
    } while (pageToken);
  }

  async delete(keys: string[]): Promise<void> {
    const files = keys.map((key) => [key, this.file(key, 'delete')] as const);
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const [key, file] = files[next++]!;
        try {
          await file.delete({ ignoreNotFound: true });
        } catch (err) {
          throw this.fail(err, 'delete', key);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, files.length) }, worker));
  }
}

function toCustomMetadata(tags: Tags): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).map(([k, v]) => [`${TAG_PREFIX}${k}`, v]));
}

function toObjectInfo(key: string, metadata: FileMetadata): ObjectInfo {
  const info: ObjectInfo = { key, size: Number(metadata.size ?? 0) };
  if (metadata.updated) info.mtime = new Date(metadata.updated);
  const tags: Tags = {};
  for (const [k, v] of Object.entries(metadata.metadata ?? {})) {
    if (k.startsWith(TAG_PREFIX) && typeof v === 'string') tags[k.slice(TAG_PREFIX.length)] = v;
  }
  if (Object.keys(tags).length > 0) info.tags = tags;
  return info;
}
