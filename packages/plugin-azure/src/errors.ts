import { StrataError, isStrataError, type ErrorCode } from '@strata/core';

/** The parts of an Azure SDK error (RestError, AbortError, a Node network error) that mapping reads. */
interface AzureErrorLike {
  name?: string;
  message?: string;
  code?: string;
  statusCode?: number;
  details?: { errorCode?: string };
  response?: { headers?: { get?(name: string): string | undefined } };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'REQUEST_SEND_ERROR',
]);
const AUTH_CODES = new Set([
  'AuthenticationFailed',
  'AuthorizationFailure',
  'AuthorizationPermissionMismatch',
  'AuthorizationResourceTypeMismatch',
  'AuthorizationServiceMismatch',
  'AuthorizationSourceIPMismatch',
  'AuthorizationProtocolMismatch',
  'InsufficientAccountPermissions',
]);

export interface ErrorScope {
  operation: string;
  /** Object key as the caller named it (without the configured prefix). */
  key: string;
  container: string;
  /** Where the service is (host and path, never a query): for network errors. */
  where: string;
  /** Seconds of the per-request timeout, for the timeout message. */
  timeout: number;
  signal?: AbortSignal;
  ifNoneMatch?: boolean;
}

/**
 * Maps what the Azure SDK throws to a StrataError. Messages name the operation, container and
 * key, and the service's error code; never the server's message text (for a failed signature it
 * echoes the string that was signed) nor anything from the request (a SAS token rides in its URL).
 */
export function mapAzureError(err: unknown, s: ErrorScope): StrataError {
  if (isStrataError(err)) return err;
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as AzureErrorLike;
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const azureCode = e.details?.errorCode ?? (e.code && !NETWORK_CODES.has(e.code) ? e.code : undefined);
  const what = `${s.operation} of "${s.key}" in Azure container "${s.container}"`;
  const reason = [status, azureCode].filter((x) => x !== undefined).join(' ');
  const context = { key: s.key, container: s.container };
  const make = (code: ErrorCode, message: string, hint?: string, retryable?: boolean) =>
    new StrataError(code, message, { operation: s.operation, context, hint, retryable, cause: sanitizedCause(e, status, azureCode) });

  if (s.signal?.aborted) return make('Aborted', `${what} aborted`);
  if (e.name === 'AbortError') {
    return make(
      'Timeout',
      `${what} got no response within ${s.timeout} s`,
      'check the network path to the storage account, or raise "timeout"',
    );
  }
  if (e.code && NETWORK_CODES.has(e.code)) {
    return make(
      'Unavailable',
      `${what} failed: cannot reach ${s.where} (${e.code})`,
      'check "endpoint" and that the storage account is reachable',
    );
  }
  if (azureCode === 'ContainerNotFound') {
    return make(
      'NotFound',
      `${what} failed: the container does not exist`,
      `create container "${s.container}" (az storage container create --name ${s.container}) or fix "container" in the config`,
    );
  }
  if (azureCode === 'BlobNotFound' || (status === 404 && azureCode === undefined))
    return make('NotFound', `object "${s.key}" not found in Azure container "${s.container}"`);
  if (s.ifNoneMatch && (azureCode === 'BlobAlreadyExists' || azureCode === 'ConditionNotMet' || status === 409 || status === 412)) {
    return make('AlreadyExists', `object "${s.key}" already exists in Azure container "${s.container}"`);
  }
  if (status === 401 || status === 403 || (azureCode !== undefined && AUTH_CODES.has(azureCode))) {
    return make(
      'PermissionDenied',
      `${what} was refused (${reason})`,
      'check the account key, or that the SAS token is valid, not expired, and grants read, add, create, write, delete, list and tag permissions',
    );
  }
  if (azureCode === 'BlobArchived') {
    return make(
      'Precondition',
      `${what} failed: the blob is in the Archive tier`,
      'rehydrate it to Hot or Cool (az storage blob set-tier), then retry',
    );
  }
  if (status === 429 || status === 503 || azureCode === 'ServerBusy') {
    return make('RateLimited', `${what} was throttled (${reason})`, 'retry later or lower "uploadConcurrency"');
  }
  if (status !== undefined && status >= 500) return make('Unavailable', `${what} failed on the server (${reason})`);
  if (status !== undefined && status >= 400) return make('InvalidArgument', `${what} was rejected (${reason})`, undefined, false);
  if (status === undefined && e.name === 'RestError') return make('Unavailable', `${what} failed (${e.code ?? 'no response'})`);
  return make('Internal', `${what} failed: ${e.name ?? 'Error'}`);
}

/** Whether the SDK error says the blob (not its container) does not exist. */
export function isBlobNotFound(err: unknown): boolean {
  const e = (typeof err === 'object' && err !== null ? err : {}) as AzureErrorLike;
  const azureCode = e.details?.errorCode ?? e.code;
  return azureCode === 'BlobNotFound' || (e.statusCode === 404 && azureCode !== 'ContainerNotFound');
}

/** A cause that keeps the diagnosis (status, code, request id) and drops the request, response and message. */
function sanitizedCause(e: AzureErrorLike, status: number | undefined, azureCode: string | undefined): Error {
  const requestId = e.response?.headers?.get?.('x-ms-request-id');
  const parts = [e.name ?? 'Error', status, azureCode ?? e.code, requestId && `request id ${requestId}`];
  return new Error(parts.filter(Boolean).join(' '));
}
