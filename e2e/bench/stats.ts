import type { PgCluster } from '../harness/postgres.js';

/** Shared by the bench modules: the median of samples, and a WAL switch waited out. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Switches WAL and waits until PostgreSQL reports the finished segment archived. */
export async function switchAndWaitArchived(pg: PgCluster): Promise<void> {
  const [{ w }] = (await pg.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w')) as [{ w: string }];
  for (;;) {
    const [s] = await pg.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver');
    if (s?.last && s.last >= w) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
