/**
 * WAL archiving measures of `npm run bench`, Strata against pgBackRest 2.45 on the same PostgreSQL 15
 * cluster in the same run (both zstd level 3):
 * - sync: wall time of one `archive-push` of a real 16 MiB segment, per segment, tools alternating
 *   (A B, then B A). Also timed: `node -e 0` (Node's own start) and Strata through oclif
 *   (STRATA_FAST_PATH=0), to show where the time goes.
 * - async: sustained segments/s while PostgreSQL's archiver drains a backlog of ready segments,
 *   pgBackRest with archive-async=y process-max=2, Strata with archive.async and processMax 2 through
 *   its sh client bin/strata-archive-push --spool (what docs/configuration.md recommends for async).
 *
 * Runnable alone (`node e2e/dist/bench/archive.js`; BENCH_ARCHIVE_SYNC_SEGMENTS,
 * BENCH_ARCHIVE_ASYNC_SEGMENTS, BENCH_ROUNDS) or from run.ts through runArchiveBench().
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PgCluster, chownToPostgres, makeScratchDir, runAsPostgres, runCommand, stopAllClusters } from '../harness/postgres.js';
import { STRATA_BIN, writeStrataConfig } from '../harness/strata.js';
import { pgbackrestConfig } from './pgbackrest.js';
import { median } from './stats.js';

export interface ArchiveBenchOptions {
  /** Segments each tool pushes synchronously (one timed sample each); default 12. */
  syncSegments?: number;
  /** Backlog each tool drains per round in async mode; default 32. */
  asyncSegments?: number;
  /** Async rounds; default 3. */
  rounds?: number;
  log?: (line: string) => void;
}

export type SyncTool = 'strata' | 'pgbackrest' | 'strata-oclif' | 'node';
export type AsyncTool = 'strata-async' | 'pgbackrest-async';

export interface ArchiveSample {
  measure: 'sync' | 'async';
  tool: SyncTool | AsyncTool;
  /** Sync: the segment's index; async: the round. */
  round: number;
  /** Sync: wall seconds of one archive-push; async: segments per second. */
  value: number;
}

export interface ArchiveBenchResult {
  samples: ArchiveSample[];
  summary: Record<string, unknown>;
  /** Markdown table rows in run.ts's shape: | measure | Strata | pgBackRest | ratio |. */
  table: string;
}

const PGBACKREST = '/usr/bin/pgbackrest';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sqlLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

async function setArchiveCommand(pg: PgCluster, command: string): Promise<void> {
  await pg.query(`ALTER SYSTEM SET archive_command = ${sqlLiteral(command)}`);
  await pg.query('SELECT pg_reload_conf()');
}

/** Waits until no live process holds the pusher lock `lockFile` (at most 60 s). */
async function waitNoPusher(lockFile: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    let pid: number | undefined;
    try {
      pid = Number(fs.readFileSync(lockFile, 'utf8').split('\n')[0]);
      process.kill(pid, 0);
    } catch {
      return;
    }
    if (Date.now() > deadline) throw new Error(`Strata's background pusher (pid ${pid}) did not exit`);
    await sleep(200);
  }
}

async function lastArchived(pg: PgCluster): Promise<string> {
  const [s] = await pg.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver');
  return s?.last ?? '';
}

/** `n` segments of real WAL (rows written, then a switch), left ready in pg_wal; returns their names. */
async function makeBacklog(pg: PgCluster, n: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    await pg.query('INSERT INTO bench SELECT g, md5(random()::text) FROM generate_series(1, 20000) g');
    const [{ w }] = (await pg.query<{ w: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS w')) as [{ w: string }];
    names.push(w);
  }
  return names;
}

async function waitArchived(pg: PgCluster, w: string, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await lastArchived(pg)) < w) {
    if (Date.now() > deadline) throw new Error(`${w} was not archived in time\n${pg.logTail(30)}`);
    await sleep(20);
  }
}

interface Step {
  tool: SyncTool;
  segment: number;
  cmd: string[];
  env?: Record<string, string>;
}

/**
 * Runs the steps one after another in one process as the postgres user (as PostgreSQL's archiver
 * would run them) and returns each one's wall seconds; spawn overhead is the same for every tool.
 */
async function timeSteps(steps: Step[]): Promise<{ tool: SyncTool; segment: number; seconds: number }[]> {
  const script = `
    const { spawnSync } = await import('node:child_process');
    const out = [];
    for (const s of JSON.parse(process.argv[1])) {
      const t = process.hrtime.bigint();
      const r = spawnSync(s.cmd[0], s.cmd.slice(1), { env: { ...process.env, ...s.env }, stdio: ['ignore', 'ignore', 'pipe'] });
      const seconds = Number(process.hrtime.bigint() - t) / 1e9;
      if (r.status !== 0) { process.stderr.write(s.cmd.join(' ') + ' failed: ' + r.stderr); process.exit(1); }
      out.push({ tool: s.tool, segment: s.segment, seconds });
    }
    process.stdout.write(JSON.stringify(out));`;
  const res = await runAsPostgres(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(steps)], { timeoutMs: 3_600_000 });
  if (res.code !== 0) throw new Error(`timing run failed (${res.code}): ${res.stderr}`);
  return JSON.parse(res.stdout) as { tool: SyncTool; segment: number; seconds: number }[];
}

export async function runArchiveBench(opts: ArchiveBenchOptions = {}): Promise<ArchiveBenchResult> {
  const syncSegments = opts.syncSegments ?? 12;
  const asyncSegments = opts.asyncSegments ?? 32;
  const rounds = opts.rounds ?? 3;
  const log = opts.log ?? ((s: string) => process.stdout.write(`${s}\n`));
  if (!fs.existsSync(PGBACKREST)) throw new Error(`${PGBACKREST} not found: apt-get install pgbackrest (run.ts installs it)`);

  const work = makeScratchDir('strata-bench-archive-').dir;
  const pg = await PgCluster.init({
    version: 15,
    settings: { wal_level: 'replica', archive_mode: 'on', archive_command: '', max_wal_size: '4GB', checkpoint_timeout: '30min' },
  });
  const strataConf = (name: string) => path.join(work, `${name}.yaml`);
  writeStrataConfig(strataConf('strata'), pg, path.join(work, 'strata-repo'));
  writeStrataConfig(strataConf('strata-oclif'), pg, path.join(work, 'strata-oclif-repo'));
  writeStrataConfig(strataConf('strata-async'), pg, path.join(work, 'strata-async-repo'), {
    archive: { async: true, spoolPath: path.join(work, 'strata-spool'), processMax: 2 },
  });
  const pgbrConf = (name: string) => path.join(work, `${name}.conf`);
  for (const name of ['pgbackrest', 'pgbackrest-async']) {
    const asyncOpts = name === 'pgbackrest-async' ? ['archive-async=y', `spool-path=${path.join(work, 'pgbr-spool')}`] : [];
    const conf = pgbackrestConfig({
      repoPath: path.join(work, `${name}-repo`),
      lockPath: path.join(work, `${name}-lock`),
      logPath: work,
      pg,
      extra: asyncOpts,
    });
    fs.writeFileSync(pgbrConf(name), conf);
  }
  for (const f of fs.readdirSync(work)) chownToPostgres(path.join(work, f));
  await pg.start({ waitForPromotion: true });
  for (const name of ['strata', 'strata-oclif', 'strata-async']) {
    const r = await runAsPostgres(process.execPath, [STRATA_BIN, 'init', '--config', strataConf(name)]);
    if (r.code !== 0) throw new Error(`strata init failed: ${r.stderr}`);
  }
  for (const name of ['pgbackrest', 'pgbackrest-async']) {
    const r = await runAsPostgres(PGBACKREST, [`--config=${pgbrConf(name)}`, '--stanza=bench', 'stanza-create']);
    if (r.code !== 0) throw new Error(`pgbackrest stanza-create failed: ${r.stderr}`);
  }
  await pg.query('CREATE TABLE bench (id int, v text)');
  const samples: ArchiveSample[] = [];

  // Sync: copies of real segments, each pushed once by each tool.
  log(`archive-push, sync: ${syncSegments} segments of 16 MiB`);
  const stash = path.join(work, 'stash');
  fs.mkdirSync(stash);
  const names = await makeBacklog(pg, syncSegments);
  for (const n of names) fs.copyFileSync(path.join(pg.dataDir, 'pg_wal', n), path.join(stash, n));
  await runCommand('chown', ['-R', `${fs.statSync(pg.dataDir).uid}:${fs.statSync(pg.dataDir).gid}`, stash]);
  await setArchiveCommand(pg, 'true');
  await waitArchived(pg, names.at(-1)!);
  await setArchiveCommand(pg, '');

  const node = [process.execPath, '--max-semi-space-size=1'];
  const syncCmd = (tool: SyncTool, seg: string): Omit<Step, 'segment'> => {
    const file = path.join(stash, seg);
    switch (tool) {
      case 'strata':
        return { tool, cmd: [...node, STRATA_BIN, 'archive-push', file, '--config', strataConf('strata')] };
      case 'strata-oclif':
        return {
          tool,
          cmd: [...node, STRATA_BIN, 'archive-push', file, '--config', strataConf('strata-oclif')],
          env: { STRATA_FAST_PATH: '0' },
        };
      case 'pgbackrest':
        return { tool, cmd: [PGBACKREST, `--config=${pgbrConf('pgbackrest')}`, '--stanza=bench', 'archive-push', file] };
      case 'node':
        return { tool, cmd: [...node, '-e', '0'] };
    }
  };
  const syncTools: SyncTool[] = ['strata', 'pgbackrest', 'strata-oclif', 'node'];
  const steps = names.flatMap((seg, i) =>
    (i % 2 ? [...syncTools].reverse() : syncTools).map((t) => ({ ...syncCmd(t, seg), segment: i + 1 })),
  );
  for (const r of await timeSteps(steps)) samples.push({ measure: 'sync', tool: r.tool, round: r.segment, value: r.seconds });
  for (const t of syncTools) {
    log(
      `  ${t.padEnd(16)} median ${(median(samples.filter((s) => s.measure === 'sync' && s.tool === t).map((s) => s.value)) * 1000).toFixed(0)} ms`,
    );
  }

  // Async: PostgreSQL's archiver drains a backlog through each tool in turn.
  log(`archive-push, async: ${asyncSegments} segments per round, ${rounds} rounds`);
  const asyncCommand: Record<AsyncTool, string> = {
    // The sh client (bin/strata-archive-push): a segment the pusher has stored is acknowledged without starting Node.
    'strata-async': `STRATA_NODE=${process.execPath} ${path.join(path.dirname(STRATA_BIN), 'strata-archive-push')} --spool ${path.join(work, 'strata-spool', 'main', 'local', 'archive-push')} --config ${strataConf('strata-async')} %p`,
    'pgbackrest-async': `${PGBACKREST} --config=${pgbrConf('pgbackrest-async')} --stanza=bench archive-push %p`,
  };
  const asyncTools: AsyncTool[] = ['strata-async', 'pgbackrest-async'];
  for (let round = 1; round <= rounds; round++) {
    for (const tool of round % 2 ? asyncTools : [...asyncTools].reverse()) {
      // Strata's background pusher outlives its round by up to 10 s idle, and pushes any ready
      // file it sees meanwhile (the next backlog, or the other tool's): every round starts without one.
      await waitNoPusher(path.join(work, 'strata-spool', 'main', 'local', 'archive-push', 'pusher.lock'));
      const backlog = await makeBacklog(pg, asyncSegments);
      const started = process.hrtime.bigint();
      await setArchiveCommand(pg, asyncCommand[tool]);
      await waitArchived(pg, backlog.at(-1)!);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      await setArchiveCommand(pg, '');
      samples.push({ measure: 'async', tool, round, value: asyncSegments / seconds });
      log(`  round ${round} ${tool.padEnd(17)} ${(asyncSegments / seconds).toFixed(1)} segments/s`);
      // Let the tool's background process finish before the other tool is measured.
      await sleep(2000);
    }
  }

  const of = (measure: 'sync' | 'async', tool: string) => samples.filter((s) => s.measure === measure && s.tool === tool);
  const syncRatios = names.map((_, i) => {
    const get = (tool: SyncTool) => of('sync', tool).find((s) => s.round === i + 1)!.value;
    return get('strata') / get('pgbackrest');
  });
  const asyncRatios = Array.from({ length: rounds }, (_, i) => {
    const get = (tool: AsyncTool) => of('async', tool).find((s) => s.round === i + 1)!.value;
    return get('strata-async') / get('pgbackrest-async');
  });
  const med = (measure: 'sync' | 'async', tool: string) => median(of(measure, tool).map((s) => s.value));
  const summary = {
    'archive.sync.wallSeconds': {
      strata: med('sync', 'strata'),
      pgbackrest: med('sync', 'pgbackrest'),
      strataThroughOclif: med('sync', 'strata-oclif'),
      nodeStart: med('sync', 'node'),
      ratio: median(syncRatios),
      ratiosPerSegment: syncRatios,
    },
    'archive.async.segmentsPerSecond': {
      strata: med('async', 'strata-async'),
      pgbackrest: med('async', 'pgbackrest-async'),
      ratio: median(asyncRatios),
      ratiosPerRound: asyncRatios,
    },
  };
  const ms = (v: number) => `${(v * 1000).toFixed(0)} ms`;
  const table = [
    `WAL archiving: sync = one archive-push of a 16 MiB segment (median of ${syncSegments}; Node start alone ${ms(med('sync', 'node'))}, Strata through oclif ${ms(med('sync', 'strata-oclif'))}); async = segments/s draining a ${asyncSegments}-segment backlog, processMax 2 (median of ${rounds} rounds). Ratios: medians of per-sample Strata/pgBackRest (sync: lower is better; async: higher is better).`,
    '',
    '| archive | measure | Strata | pgBackRest | ratio |',
    '|---|---|---|---|---|',
    `| sync | wall per segment | ${ms(med('sync', 'strata'))} | ${ms(med('sync', 'pgbackrest'))} | ${median(syncRatios).toFixed(2)} |`,
    `| async | segments/s | ${med('async', 'strata-async').toFixed(1)} | ${med('async', 'pgbackrest-async').toFixed(1)} | ${median(asyncRatios).toFixed(2)} |`,
  ].join('\n');
  await pg.stop();
  return { samples, summary, table };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  try {
    const res = await runArchiveBench({
      syncSegments: Number(process.env.BENCH_ARCHIVE_SYNC_SEGMENTS ?? 12),
      asyncSegments: Number(process.env.BENCH_ARCHIVE_ASYNC_SEGMENTS ?? 32),
      rounds: Number(process.env.BENCH_ROUNDS ?? 3),
    });
    const results = path.resolve(path.dirname(STRATA_BIN), '..', '..', '..', 'bench', 'results');
    const date = new Date().toISOString().replace(/[:.]/g, '-');
    fs.mkdirSync(results, { recursive: true });
    fs.writeFileSync(path.join(results, `${date}-archive.json`), `${JSON.stringify({ date, ...res }, null, 2)}\n`);
    fs.writeFileSync(path.join(results, `${date}-archive.md`), `${res.table}\n`);
    process.stdout.write(`\n${res.table}\n\nwritten to ${path.join(results, date)}-archive.{json,md}\n`);
  } catch (err) {
    process.stderr.write(`archive bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await stopAllClusters();
  }
}
