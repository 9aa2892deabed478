import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  UploadPartCommand,
  type CompletedPart,
  type PutObjectCommandInput,
  type S3Client,
  type Tag,
} from '@aws-sdk/client-s3';
import { isTransient } from './errors.js';

/**
 * Runs a request whose body is a stream (which the SDK never retries) up to `attempts` times
 * while it fails transiently; `send` must build a fresh body each time.
 */
export async function retrying<T>(send: () => Promise<T>, attempts: number, signal?: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      if (attempt >= attempts || signal?.aborted || !isTransient(err)) throw err;
      await sleep(200 * 2 ** (attempt - 1) * (0.5 + Math.random()));
    }
  }
}

/** S3 allows at most this many parts in one multipart upload. */
const MAX_PARTS = 10_000;

export interface StreamUploadOptions {
  partSize: number;
  /** Parts uploaded in parallel. */
  queueSize: number;
  /** Attempts per request: the SDK never retries a streamed body, so this module does. */
  maxAttempts: number;
  signal?: AbortSignal;
  /** Set with PutObjectTagging after completion too (Ceph RGW ignores Tagging on CreateMultipartUpload). */
  tags?: Tag[];
}

/**
 * Uploads a stream of unknown length. A stream that ends within one part goes up as one
 * PutObject; a longer one as a multipart upload, visible only at CompleteMultipartUpload.
 *
 * Parts are not copied: each is the list of the stream's own chunks, sent as a streamed body of
 * known length. Memory is therefore the chunks of at most queueSize + 1 parts, and nothing is
 * allocated per part. (lib-storage's Upload concatenates every part into a new buffer; the
 * garbage made a 200 MiB upload grow the process by 60–100 MiB whatever partSize and queueSize
 * were, and the copy costs CPU.)
 *
 * On any failure or abort, in-flight requests are cancelled and the multipart upload is aborted
 * before this rejects, so no parts are left behind.
 */
export async function uploadStream(
  client: S3Client,
  params: PutObjectCommandInput,
  body: Readable,
  options: StreamUploadOptions,
): Promise<void> {
  const { partSize, queueSize } = options;
  const cancel = new AbortController();
  const onAbort = () => {
    cancel.abort();
    body.destroy(Object.assign(new Error('the upload was aborted'), { name: 'AbortError' }));
  };
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const opts = { abortSignal: cancel.signal };
  const { Bucket, Key } = params;

  const withRetries = <T>(send: () => Promise<T>) => retrying(send, options.maxAttempts, cancel.signal);
  const bodyOf = (chunks: Buffer[]) => Readable.from(chunks, { objectMode: false });

  const inFlight = new Set<Promise<void>>();
  const parts: CompletedPart[] = [];
  let failure: { error: unknown } | undefined;
  let uploadId: string | undefined;
  let partNumber = 0;

  const startPart = async (chunks: Buffer[], length: number): Promise<void> => {
    partNumber++;
    if (partNumber > MAX_PARTS) {
      throw new RangeError(`the stream needs more than ${MAX_PARTS} parts of ${partSize} bytes; raise partSize`);
    }
    if (uploadId === undefined) {
      const { Body: _body, ContentLength: _length, IfNoneMatch: _ifNoneMatch, ...createParams } = params;
      const created = await client.send(new CreateMultipartUploadCommand(createParams), opts);
      if (!created.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
      uploadId = created.UploadId;
    }
    const PartNumber = partNumber;
    const UploadId = uploadId;
    const upload = withRetries(() =>
      client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: bodyOf(chunks), ContentLength: length }), opts),
    )
      .then((out) => {
        parts.push({ PartNumber, ETag: out.ETag });
      })
      .catch((error: unknown) => {
        failure ??= { error };
        cancel.abort();
      })
      .finally(() => inFlight.delete(upload));
    inFlight.add(upload);
    // Back-pressure: reading waits while queueSize parts are on the wire.
    while (inFlight.size >= queueSize) await Promise.race(inFlight);
  };

  try {
    let chunks: Buffer[] = [];
    let filled = 0;
    for await (const data of body) {
      let chunk = typeof data === 'string' ? Buffer.from(data) : (data as Buffer);
      while (chunk.length > 0) {
        if (failure) throw failure.error;
        // A full part goes out only once more data follows: the last part is handled below.
        if (filled === partSize) {
          await startPart(chunks, filled);
          chunks = [];
          filled = 0;
        }
        const take = Math.min(chunk.length, partSize - filled);
        chunks.push(take === chunk.length ? chunk : chunk.subarray(0, take));
        filled += take;
        chunk = chunk.subarray(take);
      }
    }
    if (partNumber === 0) {
      await withRetries(() => client.send(new PutObjectCommand({ ...params, Body: bodyOf(chunks), ContentLength: filled }), opts));
      return;
    }
    await startPart(chunks, filled);
    await Promise.all(inFlight);
    if (failure) throw failure.error;
    parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
    await client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), opts);
    uploadId = undefined;
    if (options.tags?.length) {
      await client.send(new PutObjectTaggingCommand({ Bucket, Key, Tagging: { TagSet: options.tags } }), opts);
    }
  } catch (err) {
    cancel.abort();
    await Promise.allSettled(inFlight);
    if (uploadId !== undefined) {
      // The caller's error matters more than a failed clean-up; lifecycle rules can expire leftovers.
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId })).catch(() => undefined);
    }
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
