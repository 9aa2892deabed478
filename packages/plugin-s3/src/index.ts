import { z } from 'zod';
import { definePlugin } from '@strata/core';
import { S3Backend } from './S3Backend.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** A '/'-separated path of non-empty segments, none of them "." or "..". */
function isCleanPath(p: string): boolean {
  return p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

export const s3ConfigSchema = z
  .object({
    /** Bucket name (it must exist; Strata never creates buckets). */
    bucket: z
      .string({ error: 'bucket is required: the name of an existing S3 bucket' })
      .regex(
        /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
        'bucket must be a bucket name: 3-63 characters, lower-case letters, digits, "." and "-"',
      ),
    /** Key prefix inside the bucket ("" = the bucket root); a trailing "/" is implied. */
    prefix: z
      .string()
      .default('')
      .transform((p) => p.replace(/^\/+|\/+$/g, ''))
      .refine((p) => p === '' || isCleanPath(p), 'prefix must be a path like "strata/prod" (no "//", "." or ".." segments)'),
    /** AWS region; default: the AWS chain (AWS_REGION, profile), or us-east-1 with a custom endpoint. */
    region: z
      .string()
      .regex(/^[a-z0-9-]+$/, 'region must look like "eu-west-1"')
      .optional(),
    /** S3-compatible endpoint URL (MinIO, Ceph RGW, ...); default: AWS for the region. */
    endpoint: z
      .url({ protocol: /^https?$/, error: 'endpoint must be an http:// or https:// URL, e.g. https://s3.example.com:9000' })
      .refine((u) => !new URL(u).username && !new URL(u).password, 'endpoint must not contain credentials; use the credentials key')
      .optional(),
    /** Address the bucket in the path (https://host/bucket/key); most S3-compatible stores need it. */
    forcePathStyle: z.boolean().default(false),
    /** Static credentials; default: the standard AWS provider chain (env, profile, SSO, instance role). */
    credentials: z
      .object({
        accessKeyId: z.string().min(1, 'credentials.accessKeyId must not be empty'),
        secretAccessKey: z.string().min(1, 'credentials.secretAccessKey must not be empty'),
        sessionToken: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    /** Storage class of new objects (STANDARD, STANDARD_IA, GLACIER_IR, ... or the store's own). */
    storageClass: z
      .string()
      .regex(/^[A-Z][A-Z0-9_]*$/, 'storageClass must be an S3 storage class such as STANDARD or STANDARD_IA')
      .optional(),
    /** Server-side encryption of new objects. */
    sse: z.enum(['AES256', 'aws:kms'], { error: 'sse must be "AES256" or "aws:kms"' }).optional(),
    /** KMS key (id, ARN or alias) for sse: aws:kms; default: the account's aws/s3 key. */
    kmsKeyId: z.string().min(1).optional(),
    /** Store Strata's tags as S3 object tags (turn off for stores without object tagging). */
    tags: z.boolean().default(true),
    /** Multipart part size in bytes for streamed uploads; memory use is about partSize × (queueSize + 1). */
    partSize: z
      .number()
      .int()
      .min(5 * MiB, 'partSize must be at least 5 MiB (5242880), the S3 minimum')
      .max(5 * GiB, 'partSize must be at most 5 GiB')
      .default(8 * MiB),
    /** Parts of one streamed upload sent in parallel. */
    queueSize: z.number().int().min(1).max(32).default(4),
    /** Seconds a request may stay idle (no bytes sent or received) before it fails. */
    requestTimeout: z.number().positive().max(3600).default(60),
    /** Seconds to wait for a TCP connection. */
    connectTimeout: z.number().positive().max(300).default(10),
    /** Attempts of the AWS SDK per request (Strata's own retries come on top). */
    maxAttempts: z.number().int().min(1).max(10).default(3),
  })
  .strict()
  .refine((c) => c.kmsKeyId === undefined || c.sse === 'aws:kms', {
    path: ['kmsKeyId'],
    message: 'kmsKeyId needs sse: aws:kms',
  });

export type S3Config = z.output<typeof s3ConfigSchema>;

export default definePlugin({
  name: 's3',
  kind: 'storage',
  configSchema: s3ConfigSchema,
  create: (config) => new S3Backend(config),
});

export { S3Backend };
