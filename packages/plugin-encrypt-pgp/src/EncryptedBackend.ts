import { randomBytes } from 'node:crypto';
import { Readable, pipeline } from 'node:stream';
import {
  StrataError,
  noopLogger,
  type EncryptionContext,
  type GetOptions,
  type ObjectInfo,
  type PutOptions,
  type StorageBackend,
  type StorageCapabilities,
} from '@strata/core/base';
import {
  CHUNK_SIZE,
  DecryptStream,
  EncryptStream,
  HEADER_SIZE,
  HeaderError,
  ObjectCipher,
  chunkOffset,
  encryptBuffer,
  newHeader,
  openRange,
  parseHeader,
  plainSize,
  ChunkError,
  type ObjectHeader,
} from './format.js';
import type { KeyMaterial } from './keyMaterial.js';
import { KEYRING_RE } from './keyring.js';
import { KeyringStore } from './KeyringStore.js';
import type { MetadataCache } from './MetadataCache.js';
import { readAll, readPrefix } from './streams.js';

/** Parsed headers kept for ranged reads (restore reads many frames of one pack). */
const HEADER_CACHE = 2048;
/** Unwrapped data keys kept (one per backup or WAL batch). */
const KEY_CACHE = 4096;

interface DataKey {
  id: Buffer;
  key: Buffer;
}

/**
 * The storage backend core sees when a repository is encrypted: objects are encrypted on put
 * (docs/format.md, "Encrypted objects") and decrypted and authenticated on get; keyring objects
 * are hidden from listings; sizes are plaintext sizes. One data key per cluster per process,
 * wrapped once with OpenPGP; never a public-key operation per object.
 */
export class EncryptedBackend implements StorageBackend {
  readonly capabilities: StorageCapabilities;
  private readonly keyring: KeyringStore;
  private readonly writeKeys = new Map<string, Promise<DataKey>>();
  private readonly readKeys = new Map<string, Promise<Buffer>>();
  private readonly headers = new Map<string, { header: ObjectHeader; cipher: ObjectCipher }>();

  constructor(
    private readonly inner: StorageBackend,
    private readonly material: KeyMaterial,
    private readonly context: EncryptionContext,
    /** Present on hosts that cannot decrypt: plaintext copies of the metadata they wrote. */
    private readonly cache?: MetadataCache,
  ) {
    this.capabilities = { ...inner.capabilities };
    this.keyring = new KeyringStore(inner, material);
  }

  describe(): string {
    return `${this.inner.describe()}, encrypted`;
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }

  async put(key: string, body: Buffer | Readable, options: PutOptions = {}): Promise<void> {
    const dataKey = await this.dataKeyFor(key, options);
    const header = newHeader(dataKey.id);
    const cipher = new ObjectCipher(dataKey.key, header, key);
    this.headers.delete(key);
    if (Buffer.isBuffer(body)) {
      await this.inner.put(key, encryptBuffer(cipher, header, body), options);
      if (this.cache?.wants(key)) await this.cacheWrite(key, header.salt, body);
      return;
    }
    const encrypted = new EncryptStream(cipher, header);
    let sourceError: Error | undefined;
    pipeline(body, encrypted, (err) => {
      if (err) sourceError = err;
    });
    try {
      await this.inner.put(key, encrypted, options);
    } catch (err) {
      body.destroy();
      encrypted.destroy();
      throw err;
    }
    if (sourceError) throw sourceError;
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const range = options.range;
    if (!range || (range.start <= 0 && range.end === undefined)) return this.getWhole(key, options);
    if (this.cache) return this.fromCache(key, options);
    if (!this.inner.capabilities.readWithRange) {
      // The store cannot read ranges: decrypt the whole object and cut the range out.
      const plain = await readAll(await this.getWhole(key, { signal: options.signal }));
      return Readable.from([plain.subarray(range.start, range.end)]);
    }
    const start = Math.max(0, range.start);
    if (range.end === undefined) return this.getFrom(key, start, options);
    return this.getRange(key, start, range.end, options);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const info = await this.inner.head(key);
    return info && { ...info, size: plainSize(info.size) ?? info.size };
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for await (const o of this.inner.list(prefix)) {
      if (KEYRING_RE.test(o.key)) continue;
      yield { ...o, size: plainSize(o.size) ?? o.size };
    }
  }

  async delete(keys: string[]): Promise<void> {
    await this.inner.delete(keys);
    for (const key of keys) this.headers.delete(key);
    await this.cache?.remove(keys);
  }

  /** The data key new objects of this cluster are encrypted with: made and wrapped once per process. */
  private dataKeyFor(key: string, options: PutOptions): Promise<DataKey> {
    const cluster = key.split('/')[0] ?? '';
    let p = this.writeKeys.get(cluster);
    if (!p) {
      p = (async () => {
        const dataKey = { id: randomBytes(16), key: randomBytes(32) };
        const entry = await this.keyring.write(cluster, dataKey.id.toString('hex'), dataKey.key, options.tags);
        (this.context.logger ?? noopLogger).debug({ repo: this.context.repoName, keyring: entry }, 'new data key');
        // A host that cannot decrypt does not read its own data back either (one rule, testable).
        if (!this.cache) this.readKeys.set(dataKey.id.toString('hex'), Promise.resolve(dataKey.key));
        return dataKey;
      })();
      this.writeKeys.set(cluster, p);
      // A failed wrap or keyring write is retried by the next put (Repository retries puts).
      p.catch(() => this.writeKeys.delete(cluster));
    }
    return p;
  }

  private integrity(key: string, why: string, cause?: unknown): StrataError {
    return new StrataError('Integrity', `object "${key}" in ${this.describe()} is corrupt: ${why}`, {
      operation: 'read',
      context: { key, repo: this.context.repoName },
      cause,
      hint: 'restore from another copy of the repository or take a new backup; "strata verify" lists what is damaged',
    });
  }

  private parse(key: string, raw: Buffer): ObjectHeader {
    try {
      return parseHeader(raw);
    } catch (err) {
      if (err instanceof HeaderError) throw this.integrity(key, err.message);
      throw err;
    }
  }

  /** The data key of a stored object: from this process's cache, else from its keyring entries. */
  private readKey(key: string, header: ObjectHeader): Promise<Buffer> {
    let p = this.readKeys.get(header.dataKeyId);
    if (!p) {
      if (this.readKeys.size >= KEY_CACHE) this.readKeys.delete(this.readKeys.keys().next().value!);
      p = this.keyring.open(key.split('/')[0] ?? '', header.dataKeyId, key, this.describe());
      this.readKeys.set(header.dataKeyId, p);
      // Errors name the object being read: never hand one object's error to another.
      p.catch(() => this.readKeys.delete(header.dataKeyId));
    }
    return p;
  }

  private async cipherFor(key: string, header: ObjectHeader): Promise<ObjectCipher> {
    return new ObjectCipher(await this.readKey(key, header), header, key);
  }

  private async getWhole(key: string, options: GetOptions): Promise<Readable> {
    if (this.cache) return this.fromCache(key, options);
    const stored = await this.inner.get(key, { signal: options.signal });
    let cipher: ObjectCipher;
    try {
      const header = this.parse(key, await readPrefix(stored, HEADER_SIZE));
      cipher = await this.cipherFor(key, header);
    } catch (err) {
      stored.destroy();
      throw err;
    }
    const out = new DecryptStream(cipher, 0, 0, (why) => this.integrity(key, why));
    return pipeline(stored, out, () => undefined);
  }

  /** Objects from chunk `start / CHUNK_SIZE` to the end: the last chunk must be the final one. */
  private async getFrom(key: string, start: number, options: GetOptions): Promise<Readable> {
    const info = await this.inner.head(key);
    if (!info) return this.inner.get(key, options); // the backend's own NotFound
    const size = plainSize(info.size);
    if (size === undefined) throw this.integrity(key, `its stored size ${info.size} is not that of any encrypted object`);
    if (start >= size) return Readable.from([]);
    const first = Math.floor(start / CHUNK_SIZE);
    const { cipher } = await this.headerOf(key, options);
    const stored = await this.inner.get(key, { range: { start: chunkOffset(first) }, signal: options.signal });
    const out = new DecryptStream(cipher, first, start - first * CHUNK_SIZE, (why) => this.integrity(key, why));
    return pipeline(stored, out, () => undefined);
  }

  private async getRange(key: string, start: number, end: number, options: GetOptions, retried = false): Promise<Readable> {
    const cached = this.headers.get(key);
    if (end <= start) {
      if (!cached) await this.headerOf(key, options);
      return Readable.from([]);
    }
    const first = Math.floor(start / CHUNK_SIZE);
    const last = Math.floor((end - 1) / CHUNK_SIZE);
    // The header (when not cached) and the chunks are fetched at the same time.
    const [{ cipher }, sealed] = await Promise.all([
      cached ?? this.headerOf(key, options),
      this.inner.get(key, { range: { start: chunkOffset(first), end: chunkOffset(last + 1) }, signal: options.signal }).then(readAll),
    ]);
    let plain: Buffer;
    try {
      if (sealed.length === 0) {
        await this.assertEndsBefore(key, first, cipher, options);
        return Readable.from([]);
      }
      plain = openRange(cipher, first, sealed, last - first + 1).plain;
    } catch (err) {
      if (!(err instanceof ChunkError)) throw err;
      // The object may have been replaced since its header was cached.
      if (cached && !retried) {
        this.headers.delete(key);
        return this.getRange(key, start, end, options, true);
      }
      throw this.integrity(key, err.message);
    }
    const from = start - first * CHUNK_SIZE;
    return Readable.from([plain.subarray(from, from + (end - start))]);
  }

  /** A read starting past the end is empty only if the chunk before it is the object's final chunk. */
  private async assertEndsBefore(key: string, first: number, cipher: ObjectCipher, options: GetOptions): Promise<void> {
    if (first === 0) throw this.integrity(key, 'it has no chunks');
    const prev = await readAll(
      await this.inner.get(key, { range: { start: chunkOffset(first - 1), end: chunkOffset(first) }, signal: options.signal }),
    );
    if (!cipher.open(first - 1, true, prev)) throw new ChunkError(`cut short after chunk ${first - 1}`);
  }

  private async headerOf(key: string, options: GetOptions): Promise<{ header: ObjectHeader; cipher: ObjectCipher }> {
    const raw = await readAll(await this.inner.get(key, { range: { start: 0, end: HEADER_SIZE }, signal: options.signal }));
    const header = this.parse(key, raw);
    const entry = { header, cipher: await this.cipherFor(key, header) };
    if (this.headers.size >= HEADER_CACHE) this.headers.delete(this.headers.keys().next().value!);
    this.headers.set(key, entry);
    return entry;
  }

  /**
   * A host without a private key or passphrase serves the metadata it wrote from its local
   * plaintext copy, if the stored object is still the one the copy was made of; anything else
   * fails naming the keys that would open it.
   */
  private async fromCache(key: string, options: GetOptions): Promise<Readable> {
    const raw = await readAll(await this.inner.get(key, { range: { start: 0, end: HEADER_SIZE }, signal: options.signal }));
    const header = this.parse(key, raw);
    const plain = await this.cache!.read(key, header.salt);
    if (!plain) {
      // Names the fingerprints needed (or reports a damaged keyring); never succeeds on this host.
      await this.readKey(key, header);
      throw new StrataError('ConfigInvalid', `cannot decrypt "${key}" in ${this.describe()}: this host holds no key for it`);
    }
    const r = options.range;
    return Readable.from([r ? plain.subarray(r.start, r.end) : plain]);
  }

  private async cacheWrite(key: string, salt: Buffer, plain: Buffer): Promise<void> {
    try {
      await this.cache!.write(key, salt, plain);
    } catch (err) {
      // The object is stored; without the copy the next incremental falls back to a full.
      this.context.logger.warn(
        { repo: this.context.repoName, key, err: (err as Error).message },
        'cannot keep a local copy of encrypted metadata; the next backup will be a full one',
      );
    }
  }
}
