import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shellQuote, stopAllClusters } from './harness/postgres.js';
import { STRATA_BIN } from './harness/strata.js';
import { StrataCluster, restoreInto } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** WAL file names stored in the repository (segments, history and backup files). */
function archived(repoDir: string): Set<string> {
  const root = path.join(repoDir, 'main', 'wal');
  const names = fs
    .readdirSync(root, { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? fs.readdirSync(path.join(root, d.name)) : [d.name]))
    .filter((f) => !f.includes('.strata-tmp-'));
  return new Set(names.map((f) => f.replace(/-[0-9a-f]{64}\.[a-z]+$/, '')));
}

/** The invariant: every WAL file PostgreSQL considers archived (.done) is in the repository. */
function expectNothingAcknowledgedUnstored(src: StrataCluster): void {
  const statusDir = path.join(src.pg.dataDir, 'pg_wal', 'archive_status');
  const done = fs
    .readdirSync(statusDir)
    .filter((f) => f.endsWith('.done'))
    .map((f) => f.slice(0, -'.done'.length));
  const stored = archived(src.repoDir);
  expect(done.filter((w) => !stored.has(w))).toEqual([]);
}

async function archiver(src: StrataCluster): Promise<{ last: string | null; failed: number; archivedCount: number }> {
  const [s] = await src.pg.query<{ last: string | null; failed: string; n: string }>(
    'SELECT last_archived_wal AS last, failed_count::text AS failed, archived_count::text AS n FROM pg_stat_archiver',
  );
  return { last: s!.last, failed: Number(s!.failed), archivedCount: Number(s!.n) };
}

/** Writes a little and closes the segment, `n` times; returns the last segment's name. */
async function makeSegments(src: StrataCluster, n: number): Promise<string> {
  let w = '';
  for (let i = 0; i < n; i++) {
    await src.pg.query('INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 2000) g');
    [{ w }] = (await src.pg.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w')) as [{ w: string }];
  }
  return w;
}

async function waitArchived(src: StrataCluster, w: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await archiver(src);
    if (s.last !== null && s.last >= w) return;
    if (Date.now() > deadline) throw new Error(`${w} not archived in time: ${JSON.stringify(s)}\n${src.pg.logTail(30)}`);
    await sleep(100);
  }
}

function pusherPid(spoolPath: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(path.join(spoolPath, 'main', 'local', 'archive-push', 'pusher.lock'), 'utf8').split('\n')[0]);
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

describe('asynchronous WAL archiving (PostgreSQL 15)', () => {
  let src: StrataCluster;
  let spoolPath: string;

  beforeAll(async () => {
    src = await StrataCluster.create({ version: 15, archive: { async: true, spoolPath: 'spool', processMax: 2 } });
    spoolPath = path.join(src.scratch, 'spool');
    await src.pg.query('CREATE TABLE t (id int, v text)');
  });

  it('stores many segments ahead in parallel, none acknowledged before it is stored, and PITR replays them', async () => {
    const label = await src.backup();
    const last = await makeSegments(src, 16);
    await waitArchived(src, last);
    expectNothingAcknowledgedUnstored(src);
    expect((await archiver(src)).failed).toBe(0);
    await src.expectNoWalGap(last);
    // The background pusher did the work, and the spool holds its lock and log.
    expect(fs.existsSync(path.join(spoolPath, 'main', 'local', 'archive-push', 'pusher.log'))).toBe(true);

    const expected = await src.pg.query<{ n: string; s: string }>(
      "SELECT count(*)::text AS n, md5(string_agg(v, ',' ORDER BY id, v)) AS s FROM t",
    );
    const [{ t: after }] = (await src.pg.query<{ t: string }>('SELECT now()::text AS t')) as [{ t: string }];
    await sleep(1100);
    await src.pg.query('TRUNCATE t');
    await src.switchWalAndWait();

    const { result, pg: restored } = await restoreInto(src, ['--target-time', after, '--target-action', 'promote']);
    expect(result.code, result.stderr).toBe(0);
    expect((result.json as { result: { label: string } }).result.label).toBe(label);
    await restored.start({ waitForPromotion: true, timeoutMs: 120_000 });
    const got = await restored.query<{ n: string; s: string }>(
      "SELECT count(*)::text AS n, md5(string_agg(v, ',' ORDER BY id, v)) AS s FROM t",
    );
    expect(got).toEqual(expected);
    expect(Number(got[0]!.n)).toBe(16 * 2000);
    await restored.stop();
  });

  it('loses nothing when the background pusher is killed with SIGKILL, and archiving resumes', async () => {
    const before = await archiver(src);
    // A backlog, so the pusher is busy when it is killed.
    const last = await makeSegments(src, 16);
    let victim: number | undefined;
    const deadline = Date.now() + 30_000;
    while ((victim = pusherPid(spoolPath)) === undefined) {
      if (Date.now() > deadline) throw new Error('no background pusher appeared');
      await sleep(20);
    }
    process.kill(victim, 'SIGKILL');
    expectNothingAcknowledgedUnstored(src);

    await waitArchived(src, last);
    expectNothingAcknowledgedUnstored(src);
    await src.expectNoWalGap(last);
    const after = await archiver(src);
    expect(after.archivedCount - before.archivedCount).toBeGreaterThanOrEqual(16);
    // A new pusher took over the dead one's lock.
    const successor = pusherPid(spoolPath);
    if (successor !== undefined) expect(successor).not.toBe(victim);
  });

  it('fails archive-push while the repository refuses writes, acknowledges nothing unstored, and catches up', async () => {
    const walDir = path.join(src.repoDir, 'main', 'wal');
    const dirs = fs.readdirSync(walDir).filter((d) => fs.statSync(path.join(walDir, d)).isDirectory());
    for (const d of dirs) fs.chmodSync(path.join(walDir, d), 0o500);
    let refused: string;
    try {
      const failedBefore = (await archiver(src)).failed;
      refused = await makeSegments(src, 3);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const s = await archiver(src);
        if (s.failed > failedBefore) break;
        if (Date.now() > deadline) throw new Error(`archiving never failed: ${JSON.stringify(s)}`);
        await sleep(100);
      }
      expectNothingAcknowledgedUnstored(src);
      expect(archived(src.repoDir).has(refused)).toBe(false);
      expect(fs.existsSync(path.join(src.pg.dataDir, 'pg_wal', 'archive_status', `${refused}.ready`))).toBe(true);
      expect(src.pg.logTail(80)).toMatch(/permission denied/i);
    } finally {
      for (const d of dirs) fs.chmodSync(path.join(walDir, d), 0o750);
    }
    const last = await makeSegments(src, 1);
    expect(last > refused).toBe(true);
    await waitArchived(src, last);
    expectNothingAcknowledgedUnstored(src);
    await src.expectNoWalGap(last);
  });

  it('through bin/strata-archive-push (sh): archives everything, acknowledges nothing unstored, and refuses a wrong --spool', async () => {
    const script = path.join(path.dirname(STRATA_BIN), 'strata-archive-push');
    const spool = path.join(spoolPath, 'main', 'local', 'archive-push');
    // Counts the calls the sh script hands to Node (the rest it answered from the spool).
    const nodeCalls = path.join(src.scratch, 'node-calls');
    const wrapper = path.join(src.scratch, 'count-node');
    fs.writeFileSync(wrapper, `#!/bin/sh\necho x >> ${shellQuote(nodeCalls)}\nexec ${shellQuote(process.execPath)} "$@"\n`, {
      mode: 0o755,
    });
    const command = (spoolDir: string) =>
      `STRATA_NODE=${shellQuote(wrapper)} ${shellQuote(script)} --spool ${shellQuote(spoolDir)} --config ${shellQuote(src.configPath)} %p`;
    const setCommand = async (c: string) => {
      await src.pg.query(`ALTER SYSTEM SET archive_command = '${c.replace(/'/g, "''")}'`);
      await src.pg.query('SELECT pg_reload_conf()');
    };
    await setCommand(command(spool));
    const last = await makeSegments(src, 16);
    await waitArchived(src, last);
    expectNothingAcknowledgedUnstored(src);
    await src.expectNoWalGap(last);
    const handedToNode = fs.existsSync(nodeCalls) ? fs.readFileSync(nodeCalls, 'utf8').split('\n').filter(Boolean).length : 0;
    process.stdout.write(`strata-archive-push: ${handedToNode} of the calls for 16+ segments started Node\n`);

    // A spool that is not this cluster's: Node refuses (a marker there must never be trusted).
    const failedBefore = (await archiver(src)).failed;
    await setCommand(command(path.join(src.scratch, 'elsewhere')));
    const refused = await makeSegments(src, 1);
    const deadline = Date.now() + 60_000;
    while ((await archiver(src)).failed === failedBefore) {
      if (Date.now() > deadline) throw new Error('archive-push with a wrong --spool never failed');
      await sleep(100);
    }
    expect(src.pg.logTail(80)).toContain(`use --spool ${spool}`);
    expect(fs.existsSync(path.join(src.pg.dataDir, 'pg_wal', 'archive_status', `${refused}.ready`))).toBe(true);
    await setCommand(command(spool));
    await waitArchived(src, refused);
    expectNothingAcknowledgedUnstored(src);
  });
});
