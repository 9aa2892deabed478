import { z } from 'zod';
import { parseRate } from '../pipeline/RateLimiter.js';

const clusterName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, "_", "." and "-" (it becomes part of object keys)');

const processMaxSchema = z.number().int().min(1).max(64);

/** A rate in bytes per second: a number, or text with a unit ("100MB", "50MiB"). */
const rateSchema = z.union([z.number().int().min(1), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  try {
    return parseRate(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message + ' (e.g. 100MB, 50MiB, 1048576)' });
    return z.NEVER;
  }
});

export const clusterSchema = z
  .object({
    pgdata: z.string().min(1),
    host: z.string().default('/var/run/postgresql'),
    port: z.number().int().min(1).max(65535).default(5432),
    user: z.string().default('postgres'),
    database: z.string().default('postgres'),
  })
  .strict();

/** Plugin-specific keys are validated by the plugin's own schema when it is loaded. */
export const repoSchema = z
  .object({
    name: clusterName,
    plugin: z.string().min(1),
  })
  .passthrough();

export const compressionSchema = z
  .object({ plugin: z.string().default('zstd') })
  .passthrough()
  .default({ plugin: 'zstd', level: 3 } as { plugin: string });

/** What `strata expire` keeps (docs/configuration.md, docs/decisions.md). Nothing set: keep everything. */
export const retentionSchema = z
  .object({
    /** Number of full backups to keep (the newest). */
    full: z.number().int().min(1).optional(),
    /** Number of differential backups to keep (the newest); incrementals on an expired one go with it. */
    diff: z.number().int().min(1).optional(),
    /** Keep full backups newer than this many days, and the newest older one (the window stays restorable). */
    fullDays: z.number().positive().optional(),
  })
  .strict()
  .default({});

export const configSchema = z
  .object({
    clusters: z.record(clusterName, clusterSchema).refine((c) => Object.keys(c).length > 0, 'configure at least one cluster'),
    repos: z.array(repoSchema).min(1, 'configure at least one repository'),
    compression: compressionSchema,
    archive: z
      .object({
        /** Seconds a backup waits for the WAL it needs to reach the repository. */
        timeout: z.number().positive().default(120),
      })
      .strict()
      .default({ timeout: 120 }),
    backup: z
      .object({
        /** Size of the compressed unit; restore fetches whole super blocks. Multiple of 8192. */
        superBlockSize: z
          .number()
          .int()
          .min(8192)
          .max(16 * 1024 * 1024)
          .refine((n) => n % 8192 === 0, 'must be a multiple of 8192')
          .default(1024 * 1024),
        /** Packs are flushed to the repository at this size. */
        packSize: z
          .number()
          .int()
          .min(1024 * 1024)
          .default(16 * 1024 * 1024),
        /** Worker threads reading, hashing and compressing (default: 2, or the cores when fewer). */
        processMax: processMaxSchema.optional(),
        /** Bytes per second for reading PGDATA and for writing to the repository (e.g. "100MB"); unset: unlimited. */
        maxRate: rateSchema.optional(),
      })
      .strict()
      .default({ superBlockSize: 1024 * 1024, packSize: 16 * 1024 * 1024 }),
    restore: z
      .object({
        /** Worker threads decompressing and verifying (default: 2, or the cores when fewer). */
        processMax: processMaxSchema.optional(),
        /** Bytes per second written to the data directory; unset: unlimited. */
        maxRate: rateSchema.optional(),
      })
      .strict()
      .default({}),
    retention: retentionSchema,
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.repos.forEach((r, i) => {
      if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: ['repos', i, 'name'], message: `duplicate repository name "${r.name}"` });
      seen.add(r.name);
    });
  });

export type StrataConfig = z.output<typeof configSchema>;
export type ClusterConfig = z.output<typeof clusterSchema>;
export type RepoConfig = z.output<typeof repoSchema>;
export type RetentionPolicy = z.output<typeof retentionSchema>;
