import { StrataError } from '../errors/index.js';
import type { Repo } from '../repository/Repo.js';
import { findWalObjects } from '../wal/archive.js';

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
