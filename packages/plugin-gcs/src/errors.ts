import { StrataError, isStrataError, type ErrorCode } from '@strata/core';

/** Socket-level failures: the server is down, unreachable or dropped the connection. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);
/** What the client library reports when a checksum of uploaded or downloaded data does not match. */
const INTEGRITY_CODES = new Set(['CONTENT_DOWNLOAD_MISMATCH', 'FILE_NO_UPLOAD', 'FILE_NO_UPLOAD_DELETE']);

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  status?: unknown;
  type?: unknown;
  message?: unknown;
  response?: { status?: unknown };
  cause?: unknown;
}

/**
 * The HTTP status an error from @google-cloud/storage carries: ApiError and upload errors in
 * `code`, GaxiosError in `status`; a resumable upload that gives up says it only in its message.
 */
export function statusOf(err: unknown): number | undefined {
  const e = err as ErrorShape | undefined;
  for (const v of [e?.code, e?.status, e?.response?.status]) if (typeof v === 'number' && v >= 100 && v < 600) return v;
  const gaveUp =
    typeof e?.message === 'string' ? /^Retry (?:limit exceeded|total time limit exceeded) - status: (\d{3})\b/.exec(e.message) : null;
  return gaveUp ? Number(gaveUp[1]) : undefined;
}

/** The first Node/system error code (ECONNREFUSED, …) along the error and its causes, or named in its message. */
function systemCodeOf(err: unknown): string | undefined {
  for (let e = err as ErrorShape | undefined, depth = 0; e && depth < 5; e = e.cause as ErrorShape | undefined, depth++) {
    if (typeof e.code === 'string') return e.code;
  }
  const message = (err as ErrorShape | undefined)?.message;
  return typeof message === 'string' ? [...NETWORK_CODES].find((c) => message.includes(c)) : undefined;
}

/** Bearer tokens and PEM keys must not travel in messages, even if a library put them there. */
export function redact(text: string): string {
  return text
    .replace(/Bearer\s+[A-Za-z0-9._~+/=-]+/g, 'Bearer [redacted]')
    .replace(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, '[redacted private key]')
    .replace(/("?(?:private_key|private_key_id|client_secret|refresh_token|access_token)"?\s*[:=]\s*)"[^"]*"/g, '$1"[redacted]"');
}

/** First line of what the server or library said, without secrets, kept short. */
function reasonOf(err: unknown): string {
  const message = (err as ErrorShape | undefined)?.message;
  const text = typeof message === 'string' ? message : String(err);
  const line = redact(text).split('\n')[0]!.trim();
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

export interface ErrorPlace {
  operation: string;
  key: string;
  /** gs://bucket/name, for messages. */
  where: string;
}

/**
 * Maps what @google-cloud/storage throws to a StrataError naming the operation, bucket and key.
 * The cause is rebuilt from the message and code only: library errors carry the request,
 * whose headers hold the access token.
 */
export function mapGcsError(err: unknown, place: ErrorPlace): StrataError {
  if (isStrataError(err)) return err;
  const { operation, key, where } = place;
  const status = statusOf(err);
  const system = systemCodeOf(err);
  const reason = reasonOf(err);
  const cause = Object.assign(new Error(reason), { code: status ?? system });
  const context = { key, ...(status === undefined ? {} : { status }) };
  const make = (code: ErrorCode, message: string, hint?: string, retryable?: boolean) =>
    new StrataError(code, message, { cause, operation, context, hint, retryable });

  const name = (err as ErrorShape | undefined)?.name;
  if (name === 'AbortError' || system === 'ABORT_ERR') return make('Aborted', `${operation} of ${where} aborted`);
  if (system && INTEGRITY_CODES.has(system)) {
    return make(
      'Integrity',
      `${operation} ${where}: data does not match its checksum (${reason})`,
      'retry; if it persists, check the network path to GCS',
    );
  }
  switch (status) {
    case 404:
      return make('NotFound', `${operation} ${where}: not found (${reason})`);
    case 412:
      return make('AlreadyExists', `${operation} ${where}: the object already exists`);
    case 401:
    case 403:
      return make(
        'PermissionDenied',
        `${operation} ${where}: permission denied (${status}: ${reason})`,
        'give the credentials Strata uses (Application Default Credentials or keyFile) a role with storage.objects.* on the bucket, e.g. roles/storage.objectAdmin',
      );
    case 429:
      return make('RateLimited', `${operation} ${where}: rate limited by GCS (${reason})`);
    case 408:
      return make('Unavailable', `${operation} ${where}: request timed out (${reason})`);
    case 400:
      return make('InvalidArgument', `${operation} ${where}: GCS rejected the request (${reason})`);
    default:
      break;
  }
  if (status !== undefined && status >= 500) return make('Unavailable', `${operation} ${where}: GCS unavailable (${status}: ${reason})`);
  if (status !== undefined) return make('Unavailable', `${operation} ${where} failed (${status}: ${reason})`, undefined, false);
  if (
    (system && NETWORK_CODES.has(system)) ||
    (err as ErrorShape | undefined)?.type === 'request-timeout' ||
    /timeout|timed out/i.test(reason)
  ) {
    return make(
      'Unavailable',
      `${operation} ${where}: cannot reach GCS (${system ?? reason})`,
      'check the network path to GCS (or apiEndpoint) and retry',
    );
  }
  if (/default credentials|could not load the (default )?credentials|invalid_grant|unable to detect a project id/i.test(reason)) {
    return make(
      'PermissionDenied',
      `${operation} ${where}: no usable Google credentials (${reason})`,
      'set up Application Default Credentials (gcloud auth application-default login, or GOOGLE_APPLICATION_CREDENTIALS) or set keyFile',
    );
  }
  return make('Unavailable', `${operation} ${where} failed: ${reason}`);
}
