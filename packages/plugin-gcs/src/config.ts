import { z } from 'zod';

const KiB = 1024;
/** GCS wants resumable-upload chunks in multiples of 256 KiB. */
const CHUNK_GRANULARITY = 256 * KiB;

/** Bucket names: 3–222 characters of lowercase letters, digits, "-", "_" and ".", letter or digit at both ends. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

export const STORAGE_CLASSES = ['STANDARD', 'NEARLINE', 'COLDLINE', 'ARCHIVE'] as const;

export const gcsConfigSchema = z
  .object({
    /** Bucket name (it must exist; Strata never creates or deletes buckets). */
    bucket: z
      .string({ error: 'bucket is required: the name of an existing GCS bucket' })
      .refine((b) => !b.startsWith('gs://'), 'give the bucket name without "gs://" (put a path in prefix)')
      .refine((b) => b.startsWith('gs://') || BUCKET_NAME.test(b), {
        message: 'not a GCS bucket name: use 3-222 lowercase letters, digits, "-", "_" and ".", starting and ending with a letter or digit',
      }),
    /** Folder inside the bucket that holds the repository, e.g. "strata/prod" (no leading "/"). */
    prefix: z
      .string()
      .default('')
      .refine(
        (p) =>
          p === '' ||
          p
            .replace(/\/$/, '')
            .split('/')
            .every((s) => s !== '' && s !== '.' && s !== '..'),
        'prefix must be a relative path like "strata/prod": no leading "/", no empty, "." or ".." parts',
      ),
    /** Project for requests that need one; objects calls do not. Default: from the credentials. */
    projectId: z.string().min(1).optional(),
    /** Service-account JSON key file; relative paths resolve against the config file's directory. Default: Application Default Credentials. */
    keyFile: z.string().min(1, 'keyFile must name a service-account JSON key file').optional(),
    /** Another endpoint than https://storage.googleapis.com: an emulator, or a private endpoint. */
    apiEndpoint: z
      .string()
      .refine(
        (u) => /^https?:\/\/[^/\s]+/.test(u) && URL.canParse(u),
        'apiEndpoint must be an http(s) URL, e.g. https://storage.example.internal',
      )
      .refine(
        (u) => !URL.canParse(u) || (new URL(u).username === '' && new URL(u).password === ''),
        'apiEndpoint must not carry credentials',
      )
      .optional(),
    /**
     * Send credentials to apiEndpoint. Default: only when keyFile is set — emulators take no
     * credentials; a private endpoint (Private Service Connect) needs them.
     */
    authWithEndpoint: z.boolean().optional(),
    /** Storage class of new objects. Default: the bucket's default class. */
    storageClass: z.enum(STORAGE_CLASSES, { error: `storageClass must be one of ${STORAGE_CLASSES.join(', ')}` }).optional(),
    /**
     * Streams go up in resumable-upload chunks of this many bytes (a multiple of 256 KiB), each
     * held in memory and retried on its own. Default: unset, the whole stream in one request.
     */
    uploadChunkSize: z
      .number()
      .int()
      .min(CHUNK_GRANULARITY, 'uploadChunkSize must be at least 262144 (256 KiB)')
      .refine((n) => n % CHUNK_GRANULARITY === 0, 'uploadChunkSize must be a multiple of 262144 (256 KiB)')
      .optional(),
    /** Seconds to wait for the server to answer one request before it fails as Unavailable. */
    timeout: z.number().positive('timeout is in seconds and must be positive').default(60),
  })
  .strict();

export type GcsConfig = z.output<typeof gcsConfigSchema>;
