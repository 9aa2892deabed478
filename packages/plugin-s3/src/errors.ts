import { StrataError, isStrataError, type ErrorCode } from '@strata/core';

/** The call an error is about: operation, a message prefix naming bucket and key, and context. */
export interface Where {
  operation: string;
  text: string;
  context: Record<string, string | number | boolean | undefined>;
}

interface SdkError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  cause?: { code?: string };
  $metadata?: { httpStatusCode?: number };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
]);
const DENIED = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'AllAccessDisabled',
]);
const THROTTLED = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequests', 'RequestLimitExceeded']);
const BAD_REQUEST = new Set(['InvalidTag', 'InvalidArgument', 'EntityTooLarge', 'KeyTooLongError', 'InvalidRange', 'MalformedXML']);
const BAD_CONFIG = new Set(['InvalidStorageClass', 'InvalidEncryptionAlgorithmError', 'KMS.NotFoundException', 'InvalidBucketName']);

/** A failure worth another attempt: a 5xx, throttling, or the connection failing. */
export function isTransient(err: unknown): boolean {
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkError;
  const status = e.$metadata?.httpStatusCode;
  const system = e.code ?? e.cause?.code;
  if (status !== undefined) return status >= 500 || status === 429 || THROTTLED.has(e.name ?? '');
  return e.name === 'TimeoutError' || e.name === 'RequestTimeout' || (system !== undefined && NETWORK_CODES.has(system));
}

const PERMISSION_HINT =
  'check the credentials (config "credentials" or the AWS chain: AWS_ACCESS_KEY_ID, profile, instance role) and that they may ' +
  'list the bucket and get, put, delete and tag its objects';

/**
 * Maps what the AWS SDK throws to a StrataError: the S3 error code and HTTP status decide the
 * Strata code, the message names the operation, bucket and key. `secrets` are cut from the text.
 */
export function mapS3Error(err: unknown, where: Where, detail?: string, secrets: readonly string[] = []): StrataError {
  if (isStrataError(err)) return err;
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as SdkError;
  const name = e.Code ?? e.name ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const system = e.code ?? e.cause?.code;
  const context: Where['context'] = { ...where.context, status, s3Code: name };

  const message = e.message ?? '';
  const parts: string[] = [];
  if (name !== 'Error') parts.push(status ? `${name} (HTTP ${status})` : name);
  else if (status) parts.push(`HTTP ${status}`);
  // RGW sends no <Message>, which the SDK reports as "UnknownError".
  if (message && message !== 'UnknownError' && message !== name) parts.push(message);
  if (system && !message.includes(system)) parts.push(system);
  let reason = parts.join(': ') || 'unknown error';
  if (detail) reason += ` (${detail})`;
  for (const s of secrets) if (s) reason = reason.split(s).join('***');

  const make = (code: ErrorCode, message: string, hint?: string, retryable?: boolean) =>
    new StrataError(code, message, { cause: err, operation: where.operation, context, hint, retryable });
  const failed = `${where.text} failed: ${reason}`;

  if (name === 'AbortError') return make('Aborted', `${where.text} aborted`);
  if (name === 'NoSuchBucket') {
    context.bucketMissing = true;
    return make(
      'ConfigInvalid',
      failed,
      `create bucket "${String(where.context.bucket)}", or fix "bucket", "region" and "endpoint" in the repository config`,
    );
  }
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) return make('NotFound', `${where.text}: no such object`);
  if (name === 'PreconditionFailed' || status === 412) return make('AlreadyExists', `${where.text}: the object already exists`);
  // AWS: a concurrent conditional write is in progress; a retry then sees 412 or succeeds.
  if (name === 'ConditionalRequestConflict') return make('Unavailable', failed, undefined, true);
  if (name === 'RequestTimeTooSkewed') return make('Unavailable', failed, 'synchronise the clock of this host (NTP)', true);
  if (DENIED.has(name) || status === 403) {
    const hint =
      name === 'SignatureDoesNotMatch' ? 'the secret access key does not belong to the access key id; fix "credentials"' : PERMISSION_HINT;
    return make('PermissionDenied', failed, hint);
  }
  if (name === 'AuthorizationHeaderMalformed' || name === 'PermanentRedirect' || status === 301) {
    return make('ConfigInvalid', failed, 'the bucket is in another region: set "region" to the bucket\'s region');
  }
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(message)) {
    return make(
      'ConfigInvalid',
      failed,
      'set "credentials" in the repository config, or provide AWS credentials (environment, profile or role)',
    );
  }
  if (/region is missing/i.test(message)) return make('ConfigInvalid', failed, 'set "region" in the repository config (or AWS_REGION)');
  if (THROTTLED.has(name) || status === 429 || status === 503) return make('RateLimited', failed);
  if (BAD_CONFIG.has(name))
    return make('ConfigInvalid', failed, 'check "storageClass", "sse" and "kmsKeyId" against what the store supports');
  if (BAD_REQUEST.has(name) || status === 416) return make('InvalidArgument', failed);
  if (status !== undefined && status >= 500) return make('Unavailable', failed);
  if (name === 'TimeoutError' || name === 'RequestTimeout' || (system && NETWORK_CODES.has(system))) {
    return make('Unavailable', failed, 'check that the endpoint is reachable from this host', true);
  }
  // Anything else (an unexpected 4xx, a bug) is not worth retrying.
  return make('Unavailable', failed, undefined, false);
}
