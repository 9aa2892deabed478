import type { Readable } from 'node:stream';
import type { z } from 'zod';
import type { Logger } from '../logger.js';

/**
 * Plugin contracts. A plugin built for another major version is refused at load time, so bump
 * CONTRACT_VERSION on any breaking change to these interfaces.
 */
export const CONTRACT_VERSION = 1;

export type PluginKind = 'storage' | 'compression' | 'encryption';

export interface StorageCapabilities {
  /** get() honours `range`. */
  readWithRange: boolean;
  /** put() honours `ifNoneMatch` atomically. */
  writeIfNotExists: boolean;
  /** Tags are stored and returned by head(). */
  tags: boolean;
  /** Largest page size list() asks for. */
  listMaxKeys: number;
}

export type Tags = Record<string, string>;

export interface PutOptions {
  tags?: Tags;
  /** Fail with AlreadyExists instead of replacing an existing object. */
  ifNoneMatch?: boolean;
  signal?: AbortSignal;
}

export interface GetOptions {
  /** Inclusive start, exclusive end (end omitted: to the end of the object). */
  range?: { start: number; end?: number };
  signal?: AbortSignal;
}

export interface ObjectInfo {
  key: string;
  size: number;
  mtime?: Date;
  tags?: Tags;
}

/**
 * What a storage plugin author implements. Keys are '/'-separated relative paths. Objects are
 * written whole: an object is visible only once put() resolved, never partially. Errors are
 * StrataErrors (NotFound, AlreadyExists, PermissionDenied, Unavailable, ...).
 */
export interface StorageBackend {
  readonly capabilities: StorageCapabilities;
  put(key: string, body: Buffer | Readable, options?: PutOptions): Promise<void>;
  get(key: string, options?: GetOptions): Promise<Readable>;
  /** undefined when the object does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with prefix, in lexical key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deleting a missing key is not an error. */
  delete(keys: string[]): Promise<void>;
  /** Human description for messages, e.g. "fs:/var/lib/strata/repo". Never contains secrets. */
  describe(): string;
  close?(): Promise<void>;
}

export interface Compressor {
  /** File-name extension of compressed objects, e.g. "zst". */
  readonly extension: string;
  /** Must not keep a reference to `data` after the promise settles: callers reuse it. */
  compress(data: Buffer): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
  /** Optional zero-copy path: the most bytes compressing `size` bytes can produce. */
  bound?(size: number): number;
  /** Optional zero-copy path: compress into `out` (at least bound(data.length) long); returns the length. */
  compressInto?(data: Buffer, out: Buffer): number;
  /**
   * Optional: a codec core's worker threads run with output identical to this compressor's, so
   * backup and restore can compress and decompress in parallel. Third-party compressors omit it
   * and run on the main thread.
   */
  readonly parallel?: { codec: 'zstd' | 'none'; level: number };
}

/** What an encryptor is told about the repository it protects. */
export interface EncryptionContext {
  /** The repository's name in the config. */
  repoName: string;
  /** Local state directory (mode 0700 recommended): where an encryptor may keep private caches. */
  stateDir: string;
  logger: Logger;
}

export interface RotateResult {
  /** Data keys found in the repository. */
  dataKeys: number;
  /** Data keys given a new keyring entry for the configured recipients. */
  rewrapped: number;
  /** Data keys whose newest keyring entry already named exactly the configured recipients. */
  unchanged: number;
}

/**
 * An encryption plugin decorates a storage backend: everything core writes passes through
 * `wrap()`'s backend, which encrypts on put and decrypts on get, so core stays unaware of it.
 */
export interface Encryptor {
  wrap(backend: StorageBackend, context: EncryptionContext): StorageBackend;
  /** Fails (naming the keys needed) when this host cannot decrypt, e.g. it holds only public keys. */
  assertCanDecrypt?(): Promise<void>;
  /** Re-wraps every data key of the clusters for the configured recipients; never rewrites data. */
  rotate?(backend: StorageBackend, context: EncryptionContext, clusters: string[]): Promise<RotateResult>;
}

export interface PluginContext {
  /** Directory relative paths in the config are resolved against. */
  configDir: string;
}

interface PluginBase<K extends PluginKind, S extends z.ZodType, T> {
  name: string;
  kind: K;
  contractVersion: number;
  configSchema: S;
  create(config: z.output<S>, context: PluginContext): T | Promise<T>;
}

export type StoragePlugin<S extends z.ZodType = z.ZodType> = PluginBase<'storage', S, StorageBackend>;
export type CompressionPlugin<S extends z.ZodType = z.ZodType> = PluginBase<'compression', S, Compressor>;
export type EncryptionPlugin<S extends z.ZodType = z.ZodType> = PluginBase<'encryption', S, Encryptor>;
export type AnyPlugin = StoragePlugin | CompressionPlugin | EncryptionPlugin;

type Definition<P extends AnyPlugin> = Omit<P, 'contractVersion'> & { contractVersion?: number };

/** A plugin package's default export. Stamps the contract version the plugin was built against. */
export function definePlugin<S extends z.ZodType>(def: Definition<StoragePlugin<S>>): StoragePlugin<S>;
export function definePlugin<S extends z.ZodType>(def: Definition<CompressionPlugin<S>>): CompressionPlugin<S>;
export function definePlugin<S extends z.ZodType>(def: Definition<EncryptionPlugin<S>>): EncryptionPlugin<S>;
export function definePlugin(def: Definition<AnyPlugin>): AnyPlugin {
  return { ...def, contractVersion: def.contractVersion ?? CONTRACT_VERSION } as AnyPlugin;
}
