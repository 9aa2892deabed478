import { PassThrough, Readable, addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AnonymousCredential,
  BlobServiceClient,
  StorageSharedKeyCredential,
  newPipeline,
  type BlobRequestConditions,
  type BlockBlobTier,
  type ContainerClient,
  type RequestPolicy,
  type RequestPolicyFactory,
  type WebResource,
} from '@azure/storage-blob';
import {
  StrataError,
  isStrataError,
  type GetOptions,
  type ObjectInfo,
  type PutOptions,
  type StorageBackend,
  type StorageCapabilities,
  type Tags,
} from '@strata/core';
import { resolveAzure, type AzureConfig } from './config.js';
import { isBlobNotFound, mapAzureError, type ErrorScope } from './errors.js';

/** Azure's largest list page. */
const MAX_LIST_PAGE = 5000;
/** Buffers up to this size go up in one request; larger ones in parallel blocks. */
const MAX_SINGLE_SHOT = 32 * 1024 * 1024;
/** Blobs deleted in parallel by delete(). */
const DELETE_CONCURRENCY = 16;
/** Blob index tags: at most 10 per blob, keys 1-128 and values 0-256 of these characters. */
const TAG_CHARS = /^[A-Za-z0-9 +\-./:=_]*$/;

export interface AzureBackendTuning {
  /** Page size list() asks for (default and maximum 5000; tests lower it to exercise paging). */
  listPageSize?: number;
}

/**
 * A repository in an Azure Blob Storage container, as block blobs under an optional prefix.
 * Streams are uploaded as staged blocks committed by one final Put Block List: until that
 * commit nothing is visible, so an aborted or failed upload leaves no blob (Azure discards
 * uncommitted blocks after a week). Conditional create is If-None-Match: * on the commit.
 */
export class AzureBackend implements StorageBackend {
  readonly capabilities: StorageCapabilities;
  private readonly container: ContainerClient;
  private readonly prefix: string;
  private readonly description: string;
  private readonly where: string;
  private readonly listPageSize: number;

  constructor(
    private readonly config: AzureConfig,
    tuning: AzureBackendTuning = {},
  ) {
    const resolved = resolveAzure(config);
    const credential =
      resolved.auth.kind === 'sharedKey'
        ? new StorageSharedKeyCredential(resolved.auth.account, resolved.auth.key)
        : new AnonymousCredential();
    const pipe = newPipeline(credential, {
      retryOptions: { maxTries: config.maxTries, retryDelayInMs: 500, maxRetryDelayInMs: 8_000 },
    });
    pipe.factories.push(requestTimeout(config.timeout * 1000));
    const serviceUrl = resolved.auth.kind === 'sas' ? `${resolved.endpoint}?${resolved.auth.token}` : resolved.endpoint;
    this.container = new BlobServiceClient(serviceUrl, pipe).getContainerClient(config.container);
    this.prefix = config.prefix === '' ? '' : `${config.prefix}/`;
    this.listPageSize = Math.min(tuning.listPageSize ?? MAX_LIST_PAGE, MAX_LIST_PAGE);
    this.capabilities = { readWithRange: true, writeIfNotExists: true, tags: config.indexTags, listMaxKeys: this.listPageSize };
    this.description = `azure://${resolved.account}/${config.container}${config.prefix ? `/${config.prefix}` : ''}`;
    const url = new URL(resolved.endpoint);
    this.where = `${url.host}${url.pathname.replace(/\/$/, '')}`;
  }

  describe(): string {
    return this.description;
  }

  async put(key: string, body: Buffer | Readable, options: PutOptions = {}): Promise<void> {
    const scope = this.scope('put', key, options.signal, options.ifNoneMatch);
    const blob = this.container.getBlockBlobClient(this.blobName(key, 'put'));
    const tags = this.capabilities.tags && options.tags && Object.keys(options.tags).length > 0 ? checkTags(options.tags, key) : undefined;
    const common = {
      abortSignal: options.signal,
      tags,
      tier: this.config.accessTier as BlockBlobTier | undefined,
      conditions: options.ifNoneMatch ? ({ ifNoneMatch: '*' } satisfies BlobRequestConditions) : undefined,
      blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
    };
    let sourceError: unknown;
    try {
      if (Buffer.isBuffer(body)) {
        options.signal?.throwIfAborted();
        await blob.uploadData(body, {
          ...common,
          blockSize: this.config.blockSize,
          concurrency: this.config.uploadConcurrency,
          maxSingleShotSize: MAX_SINGLE_SHOT,
        });
      } else {
        // The signal destroys the source, which fails the upload before its commit.
        if (options.signal) addAbortSignal(options.signal, body);
        body.once('error', (err) => (sourceError ??= err));
        await blob.uploadStream(body, this.config.blockSize, this.config.uploadConcurrency, common);
      }
    } catch (err) {
      // A failed block leaves the source paused: release whoever feeds it.
      if (!Buffer.isBuffer(body)) body.destroy();
      if (sourceError !== undefined && !options.signal?.aborted) throw sourceFailed(sourceError, key);
      throw mapAzureError(err, scope);
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const scope = this.scope('get', key, options.signal);
    const blob = this.container.getBlobClient(this.blobName(key, 'get'));
    const { range } = options;
    try {
      if (range?.end !== undefined && range.end <= range.start) {
        // An empty range (Azure reads count 0 as "to the end"); the object must still exist.
        await blob.getProperties({ abortSignal: options.signal });
        return Readable.from([]);
      }
      const offset = range?.start ?? 0;
      const count = range?.end === undefined ? undefined : range.end - offset;
      const response = await blob.download(offset, count, { abortSignal: options.signal, maxRetryRequests: this.config.maxTries });
      const source = response.readableStreamBody as Readable | undefined;
      if (!source) throw new StrataError('Internal', `Azure returned no body for "${key}"`, { operation: 'get', context: { key } });
      // Errors while the body flows become StrataErrors too.
      const out = new PassThrough();
      pipeline(source, out).catch((err: unknown) => out.destroy(mapAzureError(err, scope)));
      return out;
    } catch (err) {
      throw mapAzureError(err, scope);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const scope = this.scope('head', key);
    const blob = this.container.getBlobClient(this.blobName(key, 'head'));
    try {
      const props = await blob.getProperties();
      const info: ObjectInfo = { key, size: props.contentLength ?? 0, mtime: props.lastModified };
      if (this.capabilities.tags) info.tags = props.tagCount ? (await blob.getTags()).tags : {};
      return info;
    } catch (err) {
      // A missing container is a configuration problem, not a missing object.
      if (isBlobNotFound(err)) return undefined;
      throw mapAzureError(err, scope);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const scope = this.scope('list', prefix);
    const pages = this.container.listBlobsFlat({ prefix: this.prefix + prefix }).byPage({ maxPageSize: this.listPageSize });
    try {
      for await (const page of pages) {
        for (const item of page.segment.blobItems) {
          yield { key: item.name.slice(this.prefix.length), size: item.properties.contentLength ?? 0, mtime: item.properties.lastModified };
        }
      }
    } catch (err) {
      throw mapAzureError(err, scope);
    }
  }

  async delete(keys: string[]): Promise<void> {
    const names = keys.map((key) => this.blobName(key, 'delete'));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const i = next++;
        try {
          await this.container.getBlobClient(names[i]!).deleteIfExists({ deleteSnapshots: 'include' });
        } catch (err) {
          throw mapAzureError(err, this.scope('delete', keys[i]!));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, names.length) }, worker));
  }

  private scope(operation: string, key: string, signal?: AbortSignal, ifNoneMatch?: boolean): ErrorScope {
    return { operation, key, container: this.config.container, where: this.where, timeout: this.config.timeout, signal, ifNoneMatch };
  }

  private blobName(key: string, operation: string): string {
    if (key === '' || key.startsWith('/') || key.split('/').some((p) => p === '' || p === '.' || p === '..')) {
      throw new StrataError('InvalidArgument', `invalid object key "${key}"`, { operation, context: { key } });
    }
    const name = this.prefix + key;
    if (name.length > 1024) {
      throw new StrataError('InvalidArgument', `object key "${key}" is too long for Azure (blob names have at most 1024 characters)`, {
        operation,
        context: { key },
      });
    }
    return name;
  }
}

/** The body stream of a put failed: nothing was committed; keep a StrataError the source threw. */
function sourceFailed(err: unknown, key: string): StrataError {
  if (isStrataError(err)) return err;
  return new StrataError('Unavailable', `put of "${key}" failed: reading its data failed: ${(err as Error).message}`, {
    operation: 'put',
    context: { key },
    cause: err,
  });
}

/** Validates tags against Azure's blob index tag rules, so a bad one fails clearly instead of as a 400. */
function checkTags(tags: Tags, key: string): Tags {
  const entries = Object.entries(tags);
  const bad = entries.find(([k, v]) => k.length < 1 || k.length > 128 || v.length > 256 || !TAG_CHARS.test(k) || !TAG_CHARS.test(v));
  if (entries.length > 10 || bad) {
    throw new StrataError(
      'InvalidArgument',
      bad ? `tag "${bad[0]}" of "${key}" is not a valid Azure blob index tag` : `"${key}" has ${entries.length} tags; Azure allows 10`,
      {
        operation: 'put',
        context: { key },
        hint: 'blob index tags allow letters, digits, space and + - . / : = _ (keys up to 128, values up to 256 characters)',
      },
    );
  }
  return tags;
}

/** Sets each request's time limit until its response starts; the SDK has no option for it. */
function requestTimeout(ms: number): RequestPolicyFactory {
  return {
    create: (next: RequestPolicy): RequestPolicy => ({
      sendRequest: (request: WebResource) => {
        request.timeout = ms;
        return next.sendRequest(request);
      },
    }),
  };
}
