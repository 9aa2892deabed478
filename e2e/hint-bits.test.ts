import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stopAllClusters } from './harness/postgres.js';
import { StrataCluster, restoreInto } from './scenarios/strataCluster.js';
import { openBackup } from './scenarios/repository.js';

afterAll(() => stopAllClusters(), 120_000);

/**
 * Without data checksums (and wal_log_hints off) PostgreSQL sets hint bits and writes the pages
 * with no WAL record: a tool that finds changed pages by LSN misses them. Strata compares content.
 */
describe('hint-bit-only changes (PostgreSQL 15, no data checksums)', () => {
  it('are stored by an incremental, and the restored files equal the source', async () => {
    const src = await StrataCluster.create({ version: 15, checksums: false });
    expect((await src.pg.query<{ v: string }>(`SELECT current_setting('wal_log_hints') AS v`))[0]!.v).toBe('off');
    await src.pg.query(`CREATE TABLE h AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g`);
    await src.pg.query('CHECKPOINT');
    const [{ file, pages }] = (await src.pg.query<{ file: string; pages: number }>(
      `SELECT pg_relation_filepath('h') AS file, (pg_relation_size('h') / 8192)::int AS pages`,
    )) as [{ file: string; pages: number }];
    await src.backup();
    const lsnBefore = (await src.pg.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l'))[0]!.l;

    // The first read after commit sets hint bits on every page; the checkpoint writes them out.
    await src.pg.query('SELECT count(*) FROM h');
    await src.pg.query('CHECKPOINT');
    const walBytes = (await src.pg.query<{ n: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::text AS n`, [lsnBefore]))[0]!.n;
    // Far less WAL than the table's pages: the hint bits were written without WAL.
    expect(Number(walBytes)).toBeLessThan(pages * 8192 * 0.1);

    const res = await src.strata(['backup', '--type', 'incr', '--start-fast', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const label = (res.json as { result: { label: string } }).result.label;
    const { manifest, blockMaps } = await openBackup(src.repoDir, label);
    const entry = manifest.files.find((f) => f.path === file)!;
    const map = await blockMaps.entry(entry.blockMap!, file);
    const stored = map.superBlocks.filter((sb) => !sb.backup).reduce((n, sb) => n + (sb.pages?.length ?? sb.count), 0);
    expect(stored).toBeGreaterThanOrEqual(pages);

    const { result, pgdata, pg } = await restoreInto(src, ['--set', label, '--target-immediate', '--target-action', 'promote']);
    expect(result.code, result.stderr).toBe(0);
    expect(fs.readFileSync(path.join(pgdata, file)).equals(fs.readFileSync(path.join(src.pg.dataDir, file)))).toBe(true);
    await pg.start({ waitForPromotion: true, timeoutMs: 120_000 });
    expect((await pg.query<{ n: string }>('SELECT count(*)::text AS n FROM h'))[0]!.n).toBe('100000');
  });
});
