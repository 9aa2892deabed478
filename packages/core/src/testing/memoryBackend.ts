import { Readable, addAbortSignal } from 'node:stream';
import { StrataError, isStrataError } from '../errors/index.js';
import type { GetOptions, ObjectInfo, PutOptions, StorageBackend, StorageCapabilities, Tags } from '../plugins/contract.js';

interface StoredObject {
  data: Buffer;
  mtime: Date;
  tags?: Tags;
}

/**
 * A storage backend in process memory, for engine tests. It keeps the contract's promises
 * (atomic visibility, conditional create, key validation, lexical listing) so code tested
 * against it behaves the same on a real backend; it passes the conformance kit.
 */
export class MemoryBackend implements StorageBackend {
  readonly capabilities: StorageCapabilities = { readWithRange: true, writeIfNotExists: true, tags: true, listMaxKeys: 1000 };
  /** The stored objects, by key. Tests may read or damage them directly. */
  readonly objects = new Map<string, StoredObject>();

  describe(): string {
    return 'memory:';
  }

  async put(key: string, body: Buffer | Readable, options: PutOptions = {}): Promise<void> {
    checkKey(key, 'put');
    const data = Buffer.isBuffer(body) ? Buffer.from(body) : await readAll(body, key, options.signal);
    options.signal?.throwIfAborted();
    // Checked after the body is read, as a real store decides when the upload completes.
    if (options.ifNoneMatch && this.objects.has(key)) {
      throw new StrataError('AlreadyExists', `object "${key}" already exists`, { operation: 'put', context: { key } });
    }
    this.objects.set(key, { data, mtime: new Date(), tags: options.tags && { ...options.tags } });
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const obj = this.find(key, 'get');
    if (!obj) throw new StrataError('NotFound', `object "${key}" not found`, { operation: 'get', context: { key } });
    const { start = 0, end = obj.data.length } = options.range ?? {};
    return Readable.from([obj.data.subarray(start, Math.max(start, end))], { objectMode: false });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const obj = this.find(key, 'head');
    return obj && { key, size: obj.data.length, mtime: obj.mtime, tags: obj.tags && { ...obj.tags } };
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const matching = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort(byCodeUnit);
    for (const key of matching) {
      const obj = this.objects.get(key);
      if (obj) yield { key, size: obj.data.length, mtime: obj.mtime };
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) checkKey(key, 'delete');
    for (const key of keys) this.objects.delete(key);
  }

  private find(key: string, operation: string): StoredObject | undefined {
    checkKey(key, operation);
    return this.objects.get(key);
  }
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkKey(key: string, operation: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new StrataError('InvalidArgument', `invalid object key "${key}"`, { operation, context: { key } });
  }
}

async function readAll(body: Readable, key: string, signal?: AbortSignal): Promise<Buffer> {
  // The signal destroys the source, so a stalled upload ends too.
  if (signal) addAbortSignal(signal, body);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array));
  } catch (err) {
    if (isStrataError(err)) throw err;
    const aborted = signal?.aborted === true;
    throw new StrataError(aborted ? 'Aborted' : 'Unavailable', `put of "${key}" ${aborted ? 'aborted' : 'failed'}`, {
      cause: err,
      operation: 'put',
      context: { key },
    });
  }
  return Buffer.concat(chunks);
}
