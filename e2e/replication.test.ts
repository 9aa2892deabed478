import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireEnv, startAzurite, type TestServer } from '@strata/test-servers';
import { killAgents, metric, readState, scrape, startAgent, waitFor, within, writeAgentConfig } from './harness/agent.js';
import { freePort, makeScratchDir, stopAllClusters } from './harness/postgres.js';
import { writeStrataConfig } from './harness/strata.js';
import { StrataCluster, restoreInto, secondsBefore } from './scenarios/strataCluster.js';

/**
 * Issue 7's acceptance: three repositories of two media kinds — a directory (disk, onsite), Ceph
 * RGW over S3 (object, onsite) and an Azurite of this test's own (object, offsite) — that the test
 * stops and starts again on the same data, as an outage of the offsite store.
 */

interface CheckJson {
  ok: boolean;
  rule321: boolean;
  copies: number;
  mediaKinds: string[];
  offsiteCopies: number;
  repositories: {
    repo: string;
    reachable: boolean;
    level: boolean;
    counted: boolean;
    backups: number;
    queued: number;
    lag: { backups: number; walFiles: number };
  }[];
  archive: { checked: boolean; ok: boolean; segment?: string };
  problems: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let t0 = Date.now();
/** Phase timings go to the test output (where the time of this long scenario goes). */
function phase(name: string): void {
  process.stdout.write(`replication: ${name} at ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

let azurite: TestServer | undefined;
let azuritePort = 0;
let azuriteData = '';
let src: StrataCluster;
let repos: Record<string, unknown>[];

async function startOffsite(): Promise<void> {
  azurite = await startAzurite({ port: azuritePort, dataDir: azuriteData });
}
async function stopOffsite(): Promise<void> {
  await azurite?.stop();
  azurite = undefined;
}

function config(extra: Record<string, unknown>): void {
  writeStrataConfig(src.configPath, src.pg, src.repoDir, { archive: { timeout: 60 }, ...extra }, repos);
}

async function check(args: string[] = []): Promise<{ code: number; report: CheckJson; stderr: string }> {
  const res = await src.strata(['check', '--json', ...args]);
  const report = (res.json as { result?: CheckJson } | undefined)?.result;
  expect(report, `${res.stderr}\n${res.stdout}`).toBeDefined();
  return { code: res.code ?? -1, report: report!, stderr: res.stderr };
}

type ArchiverState = {
  failed: string;
  last_failed_wal: string | null;
  last_archived_wal: string | null;
};

async function archiverState(): Promise<ArchiverState> {
  const [s] = await src.pg.query<ArchiverState>(
    'SELECT failed_count::text AS failed, last_failed_wal, last_archived_wal FROM pg_stat_archiver',
  );
  return s!;
}

const byRepo = (r: CheckJson, name: string) => r.repositories.find((x) => x.repo === name)!;

beforeAll(async () => {
  azuritePort = await freePort();
  azuriteData = makeScratchDir('strata-e2e-offsite-').dir;
  await startOffsite();
  const prefix = `e2e/replication-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  repos = [
    { name: 'local', plugin: 'fs', path: 'repo' },
    {
      name: 's3',
      plugin: 's3',
      site: 'onsite',
      bucket: requireEnv('STRATA_TEST_S3_BUCKET'),
      prefix,
      endpoint: requireEnv('STRATA_TEST_S3_ENDPOINT'),
      region: requireEnv('STRATA_TEST_S3_REGION'),
      forcePathStyle: true,
      credentials: {
        accessKeyId: requireEnv('STRATA_TEST_S3_ACCESS_KEY_ID'),
        secretAccessKey: requireEnv('STRATA_TEST_S3_SECRET_ACCESS_KEY'),
      },
    },
    {
      name: 'offsite',
      plugin: 'azure',
      site: 'offsite',
      container: 'strata-test',
      prefix,
      endpoint: `http://127.0.0.1:${azuritePort}/${requireEnv('STRATA_TEST_AZURE_ACCOUNT')}`,
      account: requireEnv('STRATA_TEST_AZURE_ACCOUNT'),
      accountKeyEnv: 'STRATA_TEST_AZURE_KEY',
      // An outage should cost seconds per command, not the SDK's minute of retries.
      maxTries: 1,
      timeout: 10,
    },
  ];
  src = await StrataCluster.create({ version: 15, repos, extra: { minCopies: 2 } });
  await src.pg.pgbench(['-i', '-s', '2', 'postgres']);
}, 240_000);

afterAll(async () => {
  killAgents();
  await stopAllClusters();
  await stopOffsite();
  if (azuriteData) fs.rmSync(azuriteData, { recursive: true, force: true });
}, 120_000);

describe('3-2-1 copies across fs, S3 and Azure', () => {
  it('a backup and its WAL reach every repository; check reports the rule met with the counts', async () => {
    await src.backup();
    await src.switchWalAndWait();
    const { code, report } = await check();
    expect(code, report.problems.join('\n')).toBe(0);
    expect(report).toMatchObject({ ok: true, rule321: true, copies: 4, mediaKinds: ['disk', 'object'], offsiteCopies: 1 });
    for (const r of report.repositories) expect(r).toMatchObject({ reachable: true, level: true, counted: true, backups: 1 });
    expect(report.archive).toMatchObject({ checked: true, ok: true });
  }, 240_000);

  it('with the offsite store down, WAL and an incr still land on two copies; check fails; replicate brings it level', async () => {
    t0 = Date.now();
    await stopOffsite();
    await src.pg.pgbench(['-T', '5', '-c', '2', 'postgres']);
    phase('pgbench done');
    await src.switchWalAndWait(120_000);
    phase('WAL archived on two copies');
    const incr = await src.strata(['backup', '--type', 'incr', '--start-fast', '--json']);
    expect(incr.code, incr.stderr).toBe(0);
    const incrJson = incr.json as { result: { label: string; missedBy: string[] }; warnings: string[] };
    const incrResult = incrJson.result;
    expect(incrResult.missedBy).toEqual(['offsite']);
    expect(incrJson.warnings.join('\n')).toMatch(/repository "offsite" missed this backup/);
    // One round of retries per command, then the copy is skipped: not a retry storm per object.
    expect(incr.stderr.match(/retrying storage call/g)?.length ?? 0).toBeLessThanOrEqual(6);

    phase('incr done');
    const down = await check(['--no-archive-check']);
    expect(down.code).toBe(9);
    expect(down.report.rule321).toBe(false);
    expect(down.report.offsiteCopies).toBe(0);
    expect(byRepo(down.report, 'offsite')).toMatchObject({ reachable: false, counted: false });
    expect(byRepo(down.report, 'offsite').queued).toBeGreaterThan(0);
    expect(down.report.problems.join('\n')).toMatch(/"offsite" is unreachable/);

    phase('check (down) done');
    await startOffsite();
    const lagging = await check(['--no-archive-check']);
    expect(lagging.code).toBe(9);
    const lag = byRepo(lagging.report, 'offsite');
    expect(lag).toMatchObject({ reachable: true, level: false, counted: false, backups: 1 });
    expect(lag.lag.backups).toBe(1);
    expect(lag.lag.walFiles).toBeGreaterThan(0);
    expect(lagging.report.rule321).toBe(false);

    phase('offsite back, lag checked');
    const rep = await src.strata(['replicate', '--json']);
    expect(rep.code, rep.stderr).toBe(0);
    const targets = (rep.json as { result: { targets: { target: string; copied: number; backups: string[]; level: boolean }[] } }).result
      .targets;
    const offsite = targets.find((t) => t.target === 'offsite')!;
    expect(offsite.backups).toEqual([incrResult.label]);
    expect(offsite.level).toBe(true);
    expect(targets.filter((t) => t.target !== 'offsite').every((t) => t.copied === 0 && t.level)).toBe(true);

    phase('replicated');
    const level = await check();
    expect(level.code, level.report.problems.join('\n')).toBe(0);
    expect(level.report).toMatchObject({ rule321: true, copies: 4, offsiteCopies: 1 });
    expect(byRepo(level.report, 'offsite')).toMatchObject({ level: true, backups: 2, queued: 0 });

    phase('checked level');
    // Nothing lost: every repository on its own verifies both backups and an unbroken WAL range.
    const verify = await src.strata(['verify', '--json']);
    expect(verify.code, verify.stdout).toBe(0);
    const perRepo = (verify.json as { result: { repositories: { repo: string; ok: boolean; backups: unknown[] }[] } }).result.repositories;
    expect(perRepo.map((r) => [r.repo, r.ok, r.backups.length])).toEqual([
      ['local', true, 2],
      ['s3', true, 2],
      ['offsite', true, 2],
    ]);
    phase('verified');
  }, 600_000);

  it('PITR restore falls back to the other copies when the first holds a damaged pack and misses a WAL segment', async () => {
    await src.pg.query('CREATE TABLE ledger (id int PRIMARY KEY, note text)');
    await src.pg.query(`INSERT INTO ledger SELECT g, 'entry ' || g FROM generate_series(1, 2000) g`);
    const expected = await src.pg.query<{ n: string }>('SELECT count(*)::text AS n FROM ledger');
    await sleep(1100);
    const out = await src.pg.psql('BEGIN; SELECT now()::text; DELETE FROM ledger; COMMIT;');
    const incidentAt = out.trim().split('\n')[0]!;
    const last = await src.switchWalAndWait();
    phase(`ledger WAL in ${last}; archiver ${JSON.stringify(await archiverState())}`);

    // Damage the local copy: flip bytes every 64 KiB of the full backup's first pack (one spot in
    // the middle was not enough: on a fast machine pgbench can rewrite every page of the frame
    // there, and the restore then never reads it), and delete the WAL segment that holds the
    // ledger rows.
    const backups = path.join(src.repoDir, 'main', 'backup');
    const full = fs.readdirSync(backups).find((l) => /^\d{8}-\d{6}F$/.test(l))!;
    const pack = path.join(backups, full, 'pack', '000000');
    const bytes = fs.readFileSync(pack);
    for (let at = 32 * 1024; at + 64 <= bytes.length; at += 64 * 1024) for (let i = 0; i < 64; i++) bytes[at + i]! ^= 0xff;
    fs.writeFileSync(pack, bytes);
    const walDir = path.join(src.repoDir, 'main', 'wal', last.slice(0, 16));
    const victim = fs.readdirSync(walDir).find((f) => f.startsWith(last))!;
    fs.rmSync(path.join(walDir, victim));

    const target = await secondsBefore(src.pg, incidentAt, 0.5);
    const { result, pg: restored } = await restoreInto(src, ['--target-time', target, '--target-action', 'promote']);
    expect(result.code, result.stderr).toBe(0);
    const restoreJson = result.json as { result: { fallbacks: { key: string; from: string; to: string }[] }; warnings: string[] };
    const fallbacks = restoreJson.result.fallbacks;
    expect(fallbacks.some((f) => f.key.endsWith(`${full}/pack/000000`) && f.from === 'local' && f.to === 's3')).toBe(true);
    expect(restoreJson.warnings.join('\n')).toMatch(/read main\/backup\/.*\/pack\/000000 from repository "s3": repository "local" failed/);
    await restored.start({ waitForPromotion: true, timeoutMs: 180_000 });
    expect(await restored.query<{ n: string }>('SELECT count(*)::text AS n FROM ledger')).toEqual(expected);
    // archive-get (run by PostgreSQL) said where the missing segment came from.
    expect(restored.logTail(400)).toMatch(
      new RegExp(`"cmd":"archive-get","key":"main/wal/${last.slice(0, 16)}/${last}-[0-9a-f]{64}\\.zst","from":"local","to":"s3"`),
    );
    await restored.stop();

    // replicate puts the deleted segment back into the local copy (from a verified source copy).
    const rep = await src.strata(['replicate', '--to', 'local', '--json']);
    expect(rep.code, rep.stderr).toBe(0);
    expect((rep.json as { result: { targets: { target: string; wal: number }[] } }).result.targets).toEqual([
      expect.objectContaining({ target: 'local', wal: 1 }),
    ]);
    expect(fs.readdirSync(walDir).some((f) => f.startsWith(last))).toBe(true);
    phase(`PITR test done; archiver ${JSON.stringify(await archiverState())}`);
  }, 600_000);

  it('with minCopies all and the offsite store down, archive-push fails and PostgreSQL retries until it is back', async () => {
    config({ minCopies: 'all' });
    await stopOffsite();
    try {
      const failedBefore = (await archiverState()).failed;
      await src.pg.query('CREATE TABLE after_outage AS SELECT g FROM generate_series(1, 1000) g');
      const seg = (await src.pg.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w'))[0]!.w;
      phase(`switched ${seg}; failed_count was ${failedBefore}, archiver ${JSON.stringify(await archiverState())}`);
      const deadline = Date.now() + 120_000;
      let stat: ArchiverState;
      for (;;) {
        stat = await archiverState();
        // PostgreSQL archives in order: the failing file is this segment, or one before it that was
        // still waiting when the store went down (seen on a loaded CI machine); either way it stays.
        if (Number(stat.failed) > Number(failedBefore) && stat.last_failed_wal !== null && stat.last_failed_wal <= seg) break;
        if (Date.now() > deadline)
          throw new Error(
            `archive-push of ${seg} did not fail (failed_count was ${failedBefore}): ${JSON.stringify(stat)}\n${src.pg.logTail(60)}`,
          );
        await sleep(500);
      }
      expect(stat.last_archived_wal === null || stat.last_archived_wal < seg).toBe(true);
      expect(fs.existsSync(path.join(src.pg.dataDir, 'pg_wal', 'archive_status', `${seg}.ready`))).toBe(true);
      expect(src.pg.logTail(200)).toMatch(/reached 2 of 3 repositories, fewer than minCopies 3/);
    } finally {
      // Back for the tests after this one, whatever happened above.
      await startOffsite();
    }
    // A new segment wakes the archiver, which retries the failed one first.
    await src.switchWalAndWait(180_000);
    const { code, report } = await check();
    expect(code, report.problems.join('\n')).toBe(0);
    for (const r of report.repositories) expect(r.level).toBe(true);
  }, 600_000);

  it("the agent checks on a schedule and exports the 3-2-1 verdict and each copy's lag as metrics", async () => {
    const port = await freePort();
    writeAgentConfig(src, fs.readFileSync(src.configPath, 'utf8'), { check: '*/2 * * * * *', replicate: '*/3 * * * * *' }, port);
    const agent = startAgent(src.configPath);
    const stateDir = path.join(src.scratch, 'state');
    const diag = () => `${agent.lines.slice(-40).join('\n')}\n${agent.stderr.join('')}`;
    phase('agent: started');
    await waitFor(
      'a scheduled check and replication',
      () => {
        const c = readState(stateDir)?.clusters.main;
        return c?.lastCheck && (c.jobs.replicate?.runs.succeeded ?? 0) >= 1 && c;
      },
      120_000,
      diag,
    );
    phase('agent: scheduled check and replication seen');
    const m = await within(scrape(port), 60_000, 'a metrics scrape', diag);
    phase('agent: scraped');
    expect(metric(m, 'strata_rule321_met', 'cluster="main"'), m).toBe(1);
    expect(metric(m, 'strata_copies', 'cluster="main"')).toBe(4);
    expect(metric(m, 'strata_media_kinds', 'cluster="main"')).toBe(2);
    expect(metric(m, 'strata_offsite_copies', 'cluster="main"')).toBe(1);
    for (const repo of ['local', 's3', 'offsite']) {
      expect(metric(m, 'strata_repository_up', `cluster="main",repo="${repo}"`)).toBe(1);
      expect(metric(m, 'strata_repository_lag_backups', `cluster="main",repo="${repo}"`)).toBe(0);
      expect(metric(m, 'strata_repository_lag_wal_files', `cluster="main",repo="${repo}"`)).toBe(0);
    }
    process.kill(readState(stateDir)!.pid, 'SIGTERM');
    // The agent's stopTimeout is 60 s: after that it kills its jobs, so it must be gone well before this.
    expect((await within(agent.exited, 120_000, 'the agent to exit after SIGTERM', diag)).code).toBe(0);
    phase('agent: stopped');
  }, 300_000);
});
