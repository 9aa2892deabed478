import type { Readable } from 'node:stream';
import { StrataError, type ErrorCode } from '../errors/index.js';
import type { GetOptions, ObjectInfo, PutOptions, StorageBackend } from '../plugins/contract.js';

export type StorageOperation = 'put' | 'get' | 'head' | 'list' | 'delete';

export interface ChaosOptions {
  /** The 1-based call (counting only `operations`) that fails; the others pass through. */
  failOnCall: number;
  /** Code of the injected error (default Unavailable). */
  code?: ErrorCode;
  /** Whether the injected error is marked retryable (default true). */
  retryable?: boolean;
  /** Operations that count and may fail (default: all). */
  operations?: StorageOperation[];
}

export interface ChaosBackend extends StorageBackend {
  /** Calls made so far, per operation (failed ones included). */
  readonly calls: Record<StorageOperation, number>;
}

/** Wraps a backend so that the Nth call fails, as a flaky network or server would, for engine tests. */
export function chaosBackend(inner: StorageBackend, options: ChaosOptions): ChaosBackend {
  const { failOnCall, code = 'Unavailable', retryable = true, operations } = options;
  const calls: Record<StorageOperation, number> = { put: 0, get: 0, head: 0, list: 0, delete: 0 };
  let counted = 0;

  const enter = (operation: StorageOperation, key: string): void => {
    calls[operation]++;
    if (operations && !operations.includes(operation)) return;
    counted++;
    if (counted === failOnCall) {
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
