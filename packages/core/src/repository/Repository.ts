import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { StrataError, toStrataError } from '../errors/index.js';
import type { Compressor, GetOptions, ObjectInfo, PutOptions, StorageBackend, Tags } from '../plugins/contract.js';
import { describeKey } from './keys.js';
import { noopLogger, type Logger } from '../logger.js';
import type { Repo } from './Repo.js';

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 200 };

export type RepoPutOptions = Omit<PutOptions, 'tags'>;

/** Where this copy lives (config `media` and `site`): part of every object's tags. */
export interface CopyIdentity {
  media?: string;
  site?: string;
}

/** The tag names Strata puts on every object (docs/format.md). */
export const TAG = {
  cluster: 'strata-cluster',
  kind: 'strata-kind',
  backup: 'strata-backup',
  repo: 'strata-repo',
  media: 'strata-media',
  site: 'strata-site',
} as const;
const ENVELOPE_MAGIC = 'STRATA';

/**
 * The facade every command uses: retries with backoff, error mapping, naming, and checksummed
 * metadata objects. Commands never touch a backend directly.
 */
export class Repository implements Repo {
  constructor(
    readonly name: string,
    private readonly backend: StorageBackend,
    private readonly compressors: ReadonlyMap<string, Compressor>,
    private readonly logger: Logger = noopLogger,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
    private readonly copy: CopyIdentity = {},
  ) {}

  /**
   * The tags an object carries in this repository: what it is (read from its key) and which copy
   * it belongs to, so a bucket can be audited, billed or lifecycled without Strata.
   */
  tagsFor(key: string): Tags {
    const info = describeKey(key);
    const tags: Tags = { [TAG.cluster]: info.cluster, [TAG.kind]: info.kind, [TAG.repo]: this.name };
    if (info.backup) tags[TAG.backup] = info.backup;
    if (this.copy.media) tags[TAG.media] = this.copy.media;
    if (this.copy.site) tags[TAG.site] = this.copy.site;
    return tags;
  }

  describe(): string {
    return `repository "${this.name}" (${this.backend.describe()})`;
  }

  /** Where this copy lives (config `media`/`site`). */
  get identity(): CopyIdentity {
    return this.copy;
  }

  get copies(): readonly Repository[] {
    return [this];
  }

  readFrom<T>(_key: string, read: (copy: Repository) => Promise<T>): Promise<T> {
    return read(this);
  }

  get capabilities() {
    return this.backend.capabilities;
  }

  compressor(name: string): Compressor {
    const c = this.compressors.get(name);
    if (!c) {
      throw new StrataError('ConfigInvalid', `objects were compressed with "${name}", which is not loaded`, {
        hint: `install and configure the "${name}" compression plugin`,
      });
    }
    return c;
  }

  /** WAL objects name their compression by file extension. */
  compressorByExtension(extension: string): Compressor {
    for (const [name, c] of this.compressors) if (c.extension === extension) return this.compressor(name);
    return this.compressor(extension);
  }

  /** Tags are not the caller's to choose: every object gets tagsFor(key). */
  async put(key: string, body: Buffer | Readable, options: RepoPutOptions = {}): Promise<void> {
    const opts = this.backend.capabilities.tags ? { ...options, tags: this.tagsFor(key) } : options;
    // A stream can be consumed once: only buffers are retried.
    if (!Buffer.isBuffer(body)) return this.call('put', key, () => this.backend.put(key, body, opts), 1);
    return this.call('put', key, () => this.backend.put(key, body, opts));
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    return this.call('get', key, () => this.backend.get(key, options));
  }

  async getBuffer(key: string, options: GetOptions = {}): Promise<Buffer> {
    return this.call('get', key, async () => {
      const stream = await this.backend.get(key, options);
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      // One chunk (a ranged read in one call) is the answer as it is: no copy.
      return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    });
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    return this.call('head', key, () => this.backend.head(key));
  }

  /**
   * Lists with the same retries as single calls. Keys come in lexical order, so a listing that
   * fails midway resumes after the last key it yielded.
   */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let last: string | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        for await (const o of this.backend.list(prefix)) {
          if (last !== undefined && o.key <= last) continue;
          last = o.key;
          yield o;
        }
        return;
      } catch (err) {
        const wrapped = this.wrap(err, 'list', prefix);
        if (!wrapped.retryable || attempt >= this.retry.attempts) throw this.final(wrapped, 'list', prefix, attempt);
        await this.backoff(wrapped, 'list', prefix, attempt);
      }
    }
  }

  async listAll(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    for await (const o of this.list(prefix)) out.push(o);
    return out;
  }

  async delete(keys: string[]): Promise<void> {
    if (keys.length) await this.call('delete', keys[0]!, () => this.backend.delete(keys));
  }

  /**
   * Writes a metadata object: a one-line clear header with the payload's sha256, then the
   * compressed JSON payload. Any changed byte fails `readSealed`.
   */
  async putSealed(key: string, kind: string, value: unknown, compression: string, options: RepoPutOptions = {}): Promise<number> {
    const all = await sealObject(kind, value, compression, this.compressor(compression));
    await this.put(key, all, options);
    return all.length;
  }

  async readSealed<T>(key: string, kind: string): Promise<T> {
    const raw = await this.getBuffer(key);
    return this.openSealed<T>(raw, key, kind);
  }

  async openSealed<T>(raw: Buffer, key: string, kind: string): Promise<T> {
    const corrupt = (why: string, cause?: unknown) =>
      new StrataError('Integrity', `object "${key}" in ${this.describe()} is corrupt: ${why}`, {
        operation: 'read',
        context: { key, repo: this.name },
        cause,
        hint: 'restore from another copy or take a new backup; run "strata info" to see what is usable',
      });
    const nl = raw.indexOf(0x0a);
    if (nl < 0 || nl > 200) throw corrupt('missing header');
    const [magic, gotKind, version, compression, sha] = raw.subarray(0, nl).toString('latin1').split(' ');
    if (magic !== ENVELOPE_MAGIC || gotKind !== kind || version !== '1' || !compression || !sha) {
      throw corrupt(`bad header (expected a ${kind} object)`);
    }
    const body = raw.subarray(nl + 1);
    const compressor = this.compressors.get(compression);
    if (!compressor) {
      // The header is not checksummed: a damaged compression name must not pass for a missing
      // plugin. If a loaded compressor restores the checksummed payload, the header is damaged.
      for (const [name, c] of this.compressors) {
        const restored = await Promise.resolve(body)
          .then((b) => c.decompress(b))
          .catch(() => undefined);
        if (restored && sha256(restored) === sha) throw corrupt(`header names compression "${compression}", but the payload is ${name}`);
      }
      throw new StrataError(
        'ConfigInvalid',
        `object "${key}" in ${this.describe()} was compressed with "${compression}", which is not loaded`,
        {
          operation: 'read',
          context: { key, repo: this.name },
          hint: `install and configure the "${compression}" compression plugin`,
        },
      );
    }
    let payload: Buffer;
    try {
      payload = await compressor.decompress(body);
    } catch (err) {
      throw corrupt('payload does not decompress', err);
    }
    if (sha256(payload) !== sha) throw corrupt('checksum mismatch');
    try {
      return JSON.parse(payload.toString('utf8')) as T;
    } catch (err) {
      throw corrupt('payload is not valid JSON', err);
    }
  }

  private async call<T>(operation: string, key: string, fn: () => Promise<T>, attempts = this.retry.attempts): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const wrapped = this.wrap(err, operation, key);
        if (!wrapped.retryable || attempt >= attempts) throw this.final(wrapped, operation, key, attempt);
        await this.backoff(wrapped, operation, key, attempt);
      }
    }
  }

  private async backoff(err: StrataError, operation: string, key: string, attempt: number): Promise<void> {
    const delay = this.retry.baseDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random());
    this.logger.warn({ repo: this.name, operation, key, attempt, err: err.message }, 'retrying storage call');
    await new Promise((r) => setTimeout(r, delay));
  }

  /** The error a caller sees: it names the repository and its plugin, the operation and the key. */
  private final(err: StrataError, operation: string, key: string, attempts: number): StrataError {
    const where = this.describe();
    if (err.message.includes(where)) return err;
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    return new StrataError(err.code, `${operation} "${key}" in ${where} failed${tries}: ${err.message}`, {
      cause: err,
      operation: err.operation ?? operation,
      context: err.context,
      hint: err.hint,
      retryable: err.retryable,
    });
  }

  private wrap(err: unknown, operation: string, key: string): StrataError {
    const e = toStrataError(err, 'Unavailable', operation);
    if (!e.context.repo) e.context.repo = this.name;
    if (!e.context.key) e.context.key = key;
    return e;
  }
}

/** The bytes of a sealed metadata object: a clear header with the payload's sha256, then the compressed JSON. */
export async function sealObject(kind: string, value: unknown, compression: string, compressor: Compressor): Promise<Buffer> {
  const payload = Buffer.from(JSON.stringify(value));
  const body = await compressor.compress(payload);
  const header = Buffer.from(`${ENVELOPE_MAGIC} ${kind} 1 ${compression} ${sha256(payload)}\n`);
  return Buffer.concat([header, body]);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
