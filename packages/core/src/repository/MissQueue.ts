import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** One object a repository copy did not receive when it was written to the others. */
export interface Miss {
  /** Repository (copy) name. */
  repo: string;
  key: string;
  /** ISO time of the failed write. */
  at: string;
  /** Why the copy missed it (an error message; never secrets). */
  reason: string;
}

/**
 * The durable record of what each copy missed: one append-only JSON-lines file per repository
 * under `<stateDir>/replication/`. An entry is fsynced before the write that skipped the copy is
 * reported done, so a WAL segment acknowledged to PostgreSQL with fewer than all copies is never
 * forgotten. `strata replicate` compares listings (the authority) and then clears what it copied;
 * `strata check` and the daemon read the queue to see pending work without listing.
 */
export class MissQueue {
  constructor(readonly dir: string) {}

  private file(repo: string): string {
    return path.join(this.dir, `${repo}.queue`);
  }

  async record(miss: Miss): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const handle = await fs.open(this.file(miss.repo), 'a', 0o600);
    try {
      await handle.write(`${JSON.stringify(miss)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async pending(repo: string): Promise<Miss[]> {
    let text: string;
    try {
      text = await fs.readFile(this.file(repo), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: Miss[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as Miss);
      } catch {
        // A line cut short by a crash mid-append: the listing comparison still finds the object.
      }
    }
    return out;
  }

  private mark(repo: string): string {
    return path.join(this.dir, `${repo}.down`);
  }

  /**
   * Remembers, for the next short-lived processes (each archive-push), that a copy is down, so they
   * skip it at once instead of each paying a round of retries.
   */
  async markDown(repo: string, reason: string): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await fs.writeFile(this.mark(repo), `${JSON.stringify({ at: new Date().toISOString(), reason })}\n`, { mode: 0o600 });
  }

  async markUp(repo: string): Promise<void> {
    await fs.rm(this.mark(repo), { force: true });
  }

  /** When and why the copy was last marked down, if it is. */
  async downMark(repo: string): Promise<{ at: number; reason: string } | undefined> {
    try {
      const m = JSON.parse(await fs.readFile(this.mark(repo), 'utf8')) as { at: string; reason: string };
      return { at: Date.parse(m.at), reason: m.reason };
    } catch {
      return undefined;
    }
  }

  /**
   * Drops the first `count` entries (those a replication run saw before it started copying);
   * entries appended meanwhile stay. Rewritten through a temporary file and a rename.
   */
  async clear(repo: string, count: number): Promise<void> {
    const all = await this.pending(repo);
    const rest = all.slice(count);
    const file = this.file(repo);
    if (rest.length === 0) {
      await fs.rm(file, { force: true });
      return;
    }
    const tmp = `${file}.tmp-${process.pid}`;
    await fs.writeFile(tmp, rest.map((m) => `${JSON.stringify(m)}\n`).join(''), { mode: 0o600 });
    await fs.rename(tmp, file);
  }
}
