import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { StrataError } from '../errors/index.js';
import type { Logger } from '../logger.js';
import type { Repo } from '../repository/Repo.js';
import { archivePush, findWalObjects } from '../wal/archive.js';

/**
 * Stores the backup's own WAL segments that PostgreSQL has finished (a `.ready` status file: written
 * and fsynced) but whose archive_command has not stored them yet, straight from pg_wal — the same
 * checks and the same object archive-push makes, so when the archiver gets to a segment it finds it
 * stored and is done. The backup then does not wait behind the archive queue and archive_command's
 * process start (~0.5 s for the stop segment); continuous archiving itself is still watched by
 * `strata check` and pg_stat_archiver. A segment that cannot be stored this way is left to the
 * archiver (waitForWal then waits for it as before). Returns the segments stored here.
 */
export async function pushReadyWal(opts: {
  repo: Repo;
  cluster: string;
  pgdata: string;
  segments: string[];
  compression: string;
  logger: Logger;
}): Promise<string[]> {
  const pushed: string[] = [];
  const walDir = path.join(opts.pgdata, 'pg_wal');
  for (const segment of opts.segments) {
    if ((await findWalObjects(opts.repo, opts.cluster, segment)).length > 0) continue;
    const ready = await fs.stat(path.join(walDir, 'archive_status', `${segment}.ready`)).then(
      () => true,
      () => false,
    );
    if (!ready) continue;
    try {
      await archivePush({
        repo: opts.repo,
        cluster: opts.cluster,
        walPath: path.join(walDir, segment),
        compression: opts.compression,
        logger: opts.logger,
      });
      pushed.push(segment);
    } catch (err) {
      opts.logger.warn({ segment, err: (err as Error).message }, 'could not store the segment from pg_wal; waiting for archive_command');
    }
  }
  return pushed;
}

/** Polls the repository until every named segment is archived, or fails after `timeoutMs`. */
export async function waitForWal(repo: Repo, cluster: string, segments: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = [...segments];
  while (pending.length > 0) {
    const found = await findWalObjects(repo, cluster, pending[0]!);
    if (found.length > 0) {
      pending.shift();
      continue;
    }
    if (Date.now() > deadline) {
      throw new StrataError(
        'Timeout',
        `WAL segment ${pending[0]} did not reach ${repo.describe()} within ${Math.round(timeoutMs / 1000)} s`,
        {
          retryable: false,
          context: { segment: pending[0] },
          hint: 'check archive_command and pg_stat_archiver (last_failed_wal); the backup is not usable without this WAL',
        },
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
