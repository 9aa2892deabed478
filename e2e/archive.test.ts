import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeScratchDir, stopAllClusters } from './harness/postgres.js';
import { StrataCluster, chownRecursive, restoreInto } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

function walObjects(repoDir: string): string[] {
  const root = path.join(repoDir, 'main', 'wal');
  return fs
    .readdirSync(root, { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? fs.readdirSync(path.join(root, d.name)).map((f) => path.join(d.name, f)) : [d.name]));
}

describe('WAL archiving (PostgreSQL 15)', () => {
  let src: StrataCluster;
  let scratch: string;
  let segment: string;

  beforeAll(async () => {
    src = await StrataCluster.create({ version: 15 });
    await src.pg.query('CREATE TABLE t AS SELECT g FROM generate_series(1, 10000) g');
    segment = await src.switchWalAndWait();
    scratch = makeScratchDir('strata-e2e-wal-').dir;
  });

  it('archive-get restores the exact segment; a missing file exits 1 quietly', async () => {
    const dest = path.join(scratch, segment);
    const got = await src.strata(['archive-get', segment, dest]);
    expect(got.code, got.stderr).toBe(0);
    expect(fs.statSync(dest).size).toBe(16 * 1024 * 1024);
    expect(fs.readdirSync(scratch).filter((f) => f.includes('strata-tmp'))).toEqual([]);

    const missing = await src.strata(['archive-get', '0000000100000000000000FF', path.join(scratch, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('');
    expect(fs.existsSync(path.join(scratch, 'nope'))).toBe(false);
  });

  it('archive-push of identical bytes succeeds, of different bytes fails and never overwrites', async () => {
    const copy = path.join(scratch, segment);
    const before = walObjects(src.repoDir).filter((o) => o.includes(segment));
    expect(before).toHaveLength(1);
    const storedBefore = fs.readFileSync(path.join(src.repoDir, 'main', 'wal', before[0]!));

    const again = await src.strata(['archive-push', copy, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect((again.json as { result: { alreadyArchived: boolean } }).result.alreadyArchived).toBe(true);

    const buf = fs.readFileSync(copy);
    buf[4_000_000] = buf[4_000_000]! ^ 0xff;
    fs.writeFileSync(copy, buf);
    const different = await src.strata(['archive-push', copy, '--json']);
    expect(different.code).toBe(4);
    expect((different.json as { message: string }).message).toMatch(/already archived .* with different content/);
    expect(walObjects(src.repoDir).filter((o) => o.includes(segment))).toEqual(before);
    expect(fs.readFileSync(path.join(src.repoDir, 'main', 'wal', before[0]!)).equals(storedBefore)).toBe(true);
  });

  it('rejects a file that is not WAL with a clear error', async () => {
    const bogus = path.join(scratch, 'not-a-wal-file');
    fs.writeFileSync(bogus, 'x');
    chownRecursive(bogus);
    const res = await src.strata(['archive-push', bogus]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/is not a WAL file name/);
  });

  it('loses no segment while the repository refuses writes: PostgreSQL retries until it is back', async () => {
    const walDir = path.join(src.repoDir, 'main', 'wal', segment.slice(0, 16));
    fs.chmodSync(walDir, 0o500);
    try {
      await src.pg.query('INSERT INTO t SELECT g FROM generate_series(1, 10000) g');
      const [{ w }] = (await src.pg.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w')) as [{ w: string }];
      const deadline = Date.now() + 30_000;
      for (;;) {
        const [s] = await src.pg.query<{ failed: string | null; n: string }>(
          'SELECT last_failed_wal AS failed, failed_count::text AS n FROM pg_stat_archiver',
        );
        if (s?.failed === w && Number(s.n) >= 1) break;
        if (Date.now() > deadline) throw new Error(`archiving of ${w} never failed: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(src.pg.logTail(50)).toMatch(/permission denied/i);
      expect(fs.existsSync(path.join(src.pg.dataDir, 'pg_wal', w))).toBe(true);
    } finally {
      fs.chmodSync(walDir, 0o750);
    }
    const last = await src.switchWalAndWait();
    // No gap: every segment from the first to the last is there.
    await src.expectNoWalGap(last);
  });

  it('a backup stores its own WAL from pg_wal while archive_command fails, and restores from it', async () => {
    const original = (await src.pg.query<{ c: string }>("SELECT current_setting('archive_command') AS c"))[0]!.c;
    await src.pg.query(`ALTER SYSTEM SET archive_command = '/bin/false'`);
    await src.pg.query('SELECT pg_reload_conf()');
    try {
      const before = (await src.pg.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver'))[0]!.last;
      await src.pg.query('CREATE TABLE during_outage AS SELECT g FROM generate_series(1, 5000) g');
      await src.pg.query('SELECT pg_switch_wal()');
      for (const deadline = Date.now() + 30_000; ;) {
        const [a] = await src.pg.query<{ n: string }>('SELECT failed_count::text AS n FROM pg_stat_archiver');
        if (Number(a!.n) > 0) break;
        if (Date.now() > deadline) throw new Error('the archiver never failed');
        await new Promise((r) => setTimeout(r, 100));
      }
      // With the archiver failing, the backup can only finish if it stores its WAL itself (archive.timeout is 60 s).
      const started = Date.now();
      const res = await src.strata(['backup', '--type', 'full', '--start-fast', '--json']);
      expect(res.code, res.stderr).toBe(0);
      expect(Date.now() - started).toBeLessThan(50_000);
      const backup = (res.json as { result: { label: string; archiverFailing?: { lastFailedWal: string } } }).result;
      const label = backup.label;
      // Said, not hidden: WAL after this backup is not being archived.
      expect(backup.archiverFailing?.lastFailedWal).toMatch(/^[0-9A-F]{24}$/);
      const after = await src.pg.query<{ last: string | null; failed: string }>(
        'SELECT last_archived_wal AS last, failed_count::text AS failed FROM pg_stat_archiver',
      );
      expect(after[0]!.last).toBe(before);
      const { result, pg: restored } = await restoreInto(src, ['--set', label, '--target-immediate', '--target-action', 'promote']);
      expect(result.code, result.stderr).toBe(0);
      await restored.start({ waitForPromotion: true, timeoutMs: 120_000 });
      expect((await restored.query<{ n: string }>('SELECT count(*)::text AS n FROM during_outage'))[0]!.n).toBe('5000');
      await restored.stop();
    } finally {
      await src.pg.query(`ALTER SYSTEM SET archive_command = '${original.replace(/'/g, "''")}'`);
      await src.pg.query('SELECT pg_reload_conf()');
    }
    // The archiver catches up: it finds the segments the backup stored identical and goes on, no gap.
    await src.expectNoWalGap(await src.switchWalAndWait());
  });
});
