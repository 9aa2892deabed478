import { z } from 'zod';
import { parseRate } from '../pipeline/RateLimiter.js';

const clusterName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'use letters, digits, "_", "." and "-" (it becomes part of object keys)');

/** A SQL check the restore rehearsal runs on the recovered cluster: the first column of the first row, as text, must equal `expect`. */
export const rehearsalCheckSchema = z
  .object({
    name: z.string().min(1),
    sql: z.string().min(1),
    expect: z.union([z.string(), z.number(), z.boolean()]).transform(String),
    /** Database to run it in (default: the cluster's database). */
    database: z.string().optional(),
  })
  .strict();

export const rehearsalSchema = z
  .object({
    checks: z.array(rehearsalCheckSchema).default([]),
    /** How many of the largest tables get an exact row count. */
    countTables: z.number().int().min(0).max(100).default(5),
    /** Run pg_amcheck (heap and btree) when it is installed. */
    amcheck: z.boolean().default(true),
    /** Where the scratch data directory goes (default: the system temp directory). */
    scratchDir: z.string().optional(),
    /** Seconds to wait for recovery to end and the cluster to promote. */
    timeout: z.number().positive().default(600),
  })
  .strict()
  .default({ checks: [], countTables: 5, amcheck: true, timeout: 600 });

const cron = z.string().min(1);
/** When the agent runs each job (cron syntax, optional seconds field). */
export const scheduleSchema = z
  .object({
    full: cron.optional(),
    incr: cron.optional(),
    diff: cron.optional(),
    expire: cron.optional(),
    verify: cron.optional(),
    restoreTest: cron.optional(),
    /** Copies what a lagging repository misses from the others (`strata replicate`). */
    replicate: cron.optional(),
    /** Re-reads every repository for the 3-2-1 verdict and each copy's lag (metrics); no WAL switch. */
    check: cron.optional(),
  })
  .strict()
  .default({});

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
    /** Directory with this cluster's PostgreSQL server binaries (default: found from the backup's major version). */
    pgBin: z.string().optional(),
    rehearsal: rehearsalSchema,
    schedule: scheduleSchema,
  })
  .strict();

/**
 * Encryption of a repository (docs/configuration.md): the plugin's own keys (recipients, key files,
 * passphrase sources) are validated by the plugin's schema when it is loaded.
 */
export const encryptionSchema = z.object({ plugin: z.string().min(1, 'name the encryption plugin, e.g. encrypt-pgp') }).passthrough();

/** Plugin-specific keys are validated by the plugin's own schema when it is loaded. */
export const repoSchema = z
  .object({
    name: clusterName,
    plugin: z.string().min(1),
    /** The kind of media this copy is on (3-2-1: two kinds). Default: disk for fs, object for the cloud plugins. */
    media: z.enum(['disk', 'object', 'tape']).optional(),
    /** Whether this copy is away from the database host's site (3-2-1: one offsite). Default: onsite for fs, offsite for the cloud plugins. */
    site: z.enum(['onsite', 'offsite']).optional(),
    /** This copy's encryption (each copy may have its own keys); false: none, even when a top-level default is set. */
    encryption: z.union([z.literal(false), encryptionSchema]).optional(),
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
    /**
     * How many repositories must hold an object before a backup or archive-push counts it done
     * ("all", the default, or a number); the copies that missed it are replicated later.
     */
    minCopies: z.union([z.literal('all'), z.number().int().min(1)]).default('all'),
    /** Thresholds `strata check` fails on. */
    check: z
      .object({
        /** The newest backup may be at most this many hours old. */
        maxBackupAgeHours: z.number().positive().default(36),
        /** WAL files waiting to be archived (`.ready` in pg_wal/archive_status) before check fails. */
        maxReadyWal: z.number().int().min(1).default(64),
        /** Seconds check waits for a switched WAL segment to reach every repository. */
        archiveTimeout: z.number().positive().default(60),
      })
      .strict()
      .default({ maxBackupAgeHours: 36, maxReadyWal: 64, archiveTimeout: 60 }),
    compression: compressionSchema,
    /** Default encryption for every repository that does not set its own. */
    encryption: encryptionSchema.optional(),
    archive: z
      .object({
        /** Seconds a backup waits for the WAL it needs to reach the repository; also how long an async archive-push waits. */
        timeout: z.number().positive().default(120),
        /** Asynchronous archiving: a background pusher stores ready WAL files ahead, in parallel. */
        async: z.boolean().default(false),
        /** Local directory for the async spool (markers and the pusher's lock and log); required with async. */
        spoolPath: z.string().min(1).optional(),
        /** WAL files the background pusher stores at the same time (worker threads). */
        processMax: z.number().int().min(1).max(32).default(2),
      })
      .strict()
      .refine((a) => !a.async || a.spoolPath !== undefined, { message: 'archive.async needs archive.spoolPath', path: ['spoolPath'] })
      .default({ timeout: 120, async: false, processMax: 2 }),
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
    /** Locks and the agent's job state (default: /var/lib/strata/state, see docs/configuration.md). */
    stateDir: z.string().optional(),
    agent: z
      .object({
        /** Prometheus metrics endpoint, loopback only, e.g. "127.0.0.1:9187". Absent: no endpoint. */
        metrics: z
          .object({
            listen: z
              .string()
              .regex(/^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d{1,5}$/, 'use a loopback address and port, e.g. 127.0.0.1:9187'),
          })
          .strict()
          .optional(),
        /** Seconds a job gets to finish after SIGTERM before it is killed. */
        stopTimeout: z.number().positive().default(120),
        /** Scheduled backups request an immediate checkpoint instead of waiting for a spread one. */
        startFast: z.boolean().default(false),
        /** Log level of the jobs the agent runs (their logs join the agent's on stdout). */
        jobLogLevel: z.enum(['error', 'warn', 'info', 'debug']).default('warn'),
      })
      .strict()
      .default({ stopTimeout: 120, startFast: false, jobLogLevel: 'warn' }),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.repos.forEach((r, i) => {
      if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: ['repos', i, 'name'], message: `duplicate repository name "${r.name}"` });
      seen.add(r.name);
    });
    if (typeof cfg.minCopies === 'number' && cfg.minCopies > cfg.repos.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['minCopies'],
        message: `minCopies is ${cfg.minCopies}, but only ${cfg.repos.length} repositories are configured`,
      });
    }
  });

/** minCopies as a number of repositories. */
export function requiredCopies(config: Pick<StrataConfig, 'minCopies' | 'repos'>): number {
  return config.minCopies === 'all' ? config.repos.length : config.minCopies;
}

export type StrataConfig = z.output<typeof configSchema>;
export type ClusterConfig = z.output<typeof clusterSchema>;
export type RepoConfig = z.output<typeof repoSchema>;
export type EncryptionConfig = z.output<typeof encryptionSchema>;
export type RehearsalConfig = z.output<typeof rehearsalSchema>;
export type ScheduleConfig = z.output<typeof scheduleSchema>;
export type RetentionPolicy = z.output<typeof retentionSchema>;
