import type { Readable } from 'node:stream';
import { StrataError, type ErrorCode } from '../errors/index.js';
import type { GetOptions, ObjectInfo, PutOptions, StorageBackend } from '../plugins/contract.js';

export type StorageOperation = 'put' | 'get' | 'head' | 'list' | 'delete';

export interface ChaosOptions {
  /** The 1-based call (counting only `operations`) that fails; the others pass through. */
  failOnCall?: number;
  /**
   * Intermittent faults, counted per operation: the first call of each operation fails, then
   * every Nth after it (1, N+1, 2N+1, ...), so even a short-lived process (one archive-push) meets
   * a failed read and a failed upload.
   */
  failEvery?: number;
  /** Code of the injected error (default Unavailable). */
  code?: ErrorCode;
  /** Whether the injected error is marked retryable (default true). */
  retryable?: boolean;
  /** Called for each injected fault (before it is thrown). */
  onFault?: (operation: StorageOperation, key: string) => void;
  /** Operations that count and may fail (default: all). */
  operations?: StorageOperation[];
}

export interface ChaosBackend extends StorageBackend {
  /** Calls made so far, per operation (failed ones included). */
  readonly calls: Record<StorageOperation, number>;
}

/**
 * Wraps a backend so that the Nth call (or every Nth call) fails, as a flaky network or server
 * would, for engine tests. A failed put never reaches the inner backend: nothing is written.
 */
export function chaosBackend(inner: StorageBackend, options: ChaosOptions): ChaosBackend {
  const { failOnCall, failEvery, code = 'Unavailable', retryable = true, operations, onFault } = options;
  if (failOnCall === undefined && failEvery === undefined) throw new Error('chaosBackend: set failOnCall or failEvery');
  const calls: Record<StorageOperation, number> = { put: 0, get: 0, head: 0, list: 0, delete: 0 };
  let counted = 0;

  const enter = (operation: StorageOperation, key: string): void => {
    calls[operation]++;
    if (operations && !operations.includes(operation)) return;
    counted++;
    if (counted === failOnCall || (failEvery !== undefined && (calls[operation] - 1) % failEvery === 0)) {
      onFault?.(operation, key);
      throw new StrataError(code, `injected failure of ${operation} "${key}" (call ${counted})`, {
        operation,
        context: { key },
        retryable,
      });
    }
  };

  return {
    calls,
    get capabilities() {
      return inner.capabilities;
    },
    describe: () => `chaos(${inner.describe()})`,
    async put(key: string, body: Buffer | Readable, opts?: PutOptions) {
      enter('put', key);
      return inner.put(key, body, opts);
    },
    async get(key: string, opts?: GetOptions) {
      enter('get', key);
      return inner.get(key, opts);
    },
    async head(key: string) {
      enter('head', key);
      return inner.head(key);
    },
    async *list(prefix: string): AsyncIterable<ObjectInfo> {
      enter('list', prefix);
      yield* inner.list(prefix);
    },
    async delete(keys: string[]) {
      enter('delete', keys[0] ?? '');
      return inner.delete(keys);
    },
    close: inner.close && (() => inner.close!()),
  };
}
