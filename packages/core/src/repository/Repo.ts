import type { Readable } from 'node:stream';
import type { Compressor, GetOptions, ObjectInfo, StorageCapabilities } from '../plugins/contract.js';
import type { RepoPutOptions, Repository } from './Repository.js';

/**
 * What commands use to reach stored data: one repository, or every configured copy at once
 * (ReplicatedRepository: writes fan out, reads fall back). Core takes a Repo, never a backend.
 */
export interface Repo {
  readonly name: string;
  describe(): string;
  readonly capabilities: StorageCapabilities;
  compressor(name: string): Compressor;
  compressorByExtension(extension: string): Compressor;
  put(key: string, body: Buffer | Readable, options?: RepoPutOptions): Promise<void>;
  get(key: string, options?: GetOptions): Promise<Readable>;
  /** The object (or range) in memory; it may be the backend's own chunk, so callers only read it. */
  getBuffer(key: string, options?: GetOptions): Promise<Buffer>;
  head(key: string): Promise<ObjectInfo | undefined>;
  list(prefix: string): AsyncIterable<ObjectInfo>;
  listAll(prefix: string): Promise<ObjectInfo[]>;
  delete(keys: string[]): Promise<void>;
  putSealed(key: string, kind: string, value: unknown, compression: string, options?: RepoPutOptions): Promise<number>;
  readSealed<T>(key: string, kind: string): Promise<T>;
  openSealed<T>(raw: Buffer, key: string, kind: string): Promise<T>;
  /** The single repositories behind this facade, in the order reads prefer them. */
  readonly copies: readonly Repository[];
  /**
   * Runs `read` against one copy after another until one succeeds: a copy that lacks the object,
   * cannot be reached or holds a damaged copy is skipped, and the fallback is logged. `read` must
   * verify what it reads (checksums) so damage surfaces as an Integrity error here. A single
   * repository runs `read` once.
   */
  readFrom<T>(key: string, read: (copy: Repository) => Promise<T>): Promise<T>;
}
