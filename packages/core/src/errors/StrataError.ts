/**
 * One error type for the whole system, with a closed list of codes. Plugins (which may bring their
 * own copy of core) throw it too, so `isStrataError` checks a brand rather than `instanceof`.
 */
export const ERROR_CODES = [
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'RateLimited',
  'Unavailable',
  'Integrity',
  'ConfigInvalid',
  'InvalidArgument',
  'Precondition',
  'PostgresError',
  'Timeout',
  'Aborted',
  'Internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Documented process exit codes (docs/exit-codes.md). */
export const EXIT_CODES: Record<ErrorCode, number> = {
  Internal: 1,
  ConfigInvalid: 2,
  InvalidArgument: 2,
  NotFound: 3,
  AlreadyExists: 4,
  Integrity: 5,
  Unavailable: 6,
  RateLimited: 6,
  Timeout: 6,
  PermissionDenied: 7,
  PostgresError: 8,
  Precondition: 9,
  Aborted: 10,
};

const RETRYABLE: ReadonlySet<ErrorCode> = new Set(['RateLimited', 'Unavailable', 'Timeout']);
const BRAND = Symbol.for('strata.error');

export interface StrataErrorOptions {
  cause?: unknown;
  /** What was being done, e.g. "put", "restore". */
  operation?: string;
  /** Facts that help the user: object key, path, backup label. Never secrets. */
  context?: Record<string, string | number | boolean | undefined>;
  /** One sentence telling the user how to fix it. */
  hint?: string;
  retryable?: boolean;
}

export class StrataError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly operation?: string;
  readonly context: Record<string, string | number | boolean | undefined>;
  readonly hint?: string;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, options: StrataErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = `StrataError[${code}]`;
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE.has(code);
    this.operation = options.operation;
    this.context = options.context ?? {};
    this.hint = options.hint;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }

  /** Message with hint, as shown to a user. */
  describe(): string {
    return this.hint ? `${this.message}\nHint: ${this.hint}` : this.message;
  }
}

export function isStrataError(err: unknown): err is StrataError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[BRAND] === true;
}

export function isNotFound(err: unknown): boolean {
  return isStrataError(err) && err.code === 'NotFound';
}

/** Wraps anything thrown into a StrataError, keeping StrataErrors as they are. */
export function toStrataError(err: unknown, fallback: ErrorCode = 'Internal', operation?: string): StrataError {
  if (isStrataError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StrataError(fallback, message, { cause: err, operation });
}
