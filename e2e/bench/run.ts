/**
 * `npm run bench`: Strata against pgBackRest 2.45 on the same PostgreSQL 15 cluster in the same run.
 * Measured: full backup, incremental after `pgbench -T 30`, full restore into an empty directory
 * and delta restore after a small change (restore.ts), for Strata and for pgBackRest with and
 * without block incremental (repo1-block=y), plus the machine's ceilings (ceilings.ts). The tools
 * alternate (A B, then B A) for the rounds; medians and per-round ratios are reported. Results go to
 * bench/results/.
 *
 * Flags (or environment): --scale N (BENCH_SCALE, pgbench scale, default 100 ≈ 1.5 GB),
 * --rounds N (BENCH_ROUNDS, default 3), BENCH_PGBENCH_SECONDS (default 30, as issue 4 asks).
 * BENCH_ARCHIVE=0 skips the WAL archiving measures of archive.ts (they can run alone:
 * node e2e/dist/bench/archive.js).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PgCluster, chownToPostgres, makeScratchDir, runAsPostgres, stopAllClusters } from '../harness/postgres.js';
import { STRATA_BIN, strataCommandLine, writeStrataConfig } from '../harness/strata.js';
import { runArchiveBench } from './archive.js';
import { runEncryptBench } from './encrypt.js';
import { pgbackrestConfig } from './pgbackrest.js';
import { measureCeilings } from './ceilings.js';
import { benchRestores, removeRestoreDirs, type RestoreSample } from './restore.js';
import { restoreRows } from './report.js';
import { median, switchAndWaitArchived } from './stats.js';

const flag = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const SCALE = Number(flag('scale') ?? process.env.BENCH_SCALE ?? 100);
const ROUNDS = Number(flag('rounds') ?? process.env.BENCH_ROUNDS ?? 3);
const PGBENCH_SECONDS = Number(process.env.BENCH_PGBENCH_SECONDS ?? 30);
const RESULTS = path.resolve(path.dirname(STRATA_BIN), '..', '..', '..', 'bench', 'results');

type Tool = 'strata' | 'pgbackrest-block' | 'pgbackrest';
interface Sample {
  tool: Tool;
  round: number;
  kind: 'full' | 'incr';
  wallSeconds: number;
  peakRssMiB: number;
  repoBytes: number;
}

const log = (s: string) => process.stdout.write(`${s}\n`);

function ensureTools(): void {
  const missing = ['pgbackrest', 'time', 'zstd'].filter((p) => !fs.existsSync(`/usr/bin/${p}`));
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`install ${missing.join(' ')} (apt-get install ${missing.join(' ')}) or run as root`);
  log(`installing ${missing.join(', ')} from Debian`);
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** Runs a command as postgres under /usr/bin/time; returns wall seconds, peak RSS and stdout. */
async function timed(cmd: string, args: string[]): Promise<{ wallSeconds: number; peakRssMiB: number; stdout: string }> {
  const started = process.hrtime.bigint();
  const res = await runAsPostgres('/usr/bin/time', ['-f', 'STRATA_BENCH_MAXRSS=%M', cmd, ...args], { timeoutMs: 3_600_000 });
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (res.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${res.code}):\n${res.stderr}\n${res.stdout}`);
  const kib = Number(/STRATA_BENCH_MAXRSS=(\d+)/.exec(res.stderr)?.[1] ?? NaN);
  return { wallSeconds, peakRssMiB: kib / 1024, stdout: res.stdout };
}

/** A shell command running `commands` in parallel and failing if any fails. */
function parallelAll(commands: string[]): string {
  const starts = commands.map((c, i) => `${c} & p${i}=$!`).join('; ');
  return `${starts}; ${commands.map((_, i) => `wait $p${i}`).join(' && ')}`;
}

async function main(): Promise<void> {
  ensureTools();
  const work = makeScratchDir('strata-bench-').dir;
  const strataConfig = path.join(work, 'strata.yaml');
  const pgbrConfig = (tool: Tool) => path.join(work, `${tool}.conf`);
  const pgbrTools: Tool[] = ['pgbackrest-block', 'pgbackrest'];
  const pushes = [
    `${strataCommandLine()} archive-push --config ${strataConfig} %p`,
    ...pgbrTools.map((t) => `pgbackrest --config=${pgbrConfig(t)} --stanza=bench archive-push %p`),
  ];
  const pg = await PgCluster.init({
    version: 15,
    settings: {
      wal_level: 'replica',
      archive_mode: 'on',
      // All three archive each segment in parallel: no tool's backup waits behind another's push.
      archive_command: parallelAll(pushes),
      max_wal_size: '4GB',
      checkpoint_timeout: '30min',
    },
  });
  writeStrataConfig(strataConfig, pg, path.join(work, 'strata-repo'));
  for (const tool of pgbrTools) {
    const block = tool === 'pgbackrest-block' ? ['beta=y', 'repo1-bundle=y', 'repo1-block=y'] : [];
    const conf = pgbackrestConfig({
      repoPath: path.join(work, tool),
      lockPath: path.join(work, `${tool}-lock`),
      logPath: work,
      pg,
      extra: ['start-fast=y', ...block],
    });
    fs.writeFileSync(pgbrConfig(tool), conf);
  }
  for (const f of fs.readdirSync(work)) chownToPostgres(path.join(work, f));
  await pg.start({ waitForPromotion: true });

  const strata = (args: string[]) => timed(process.execPath, ['--max-semi-space-size=1', STRATA_BIN, ...args, '--config', strataConfig]);
  const pgbr = (tool: Tool, args: string[]) => timed('/usr/bin/pgbackrest', [`--config=${pgbrConfig(tool)}`, '--stanza=bench', ...args]);
  await strata(['init']);
  for (const tool of pgbrTools) await pgbr(tool, ['stanza-create']);

  log(`loading pgbench scale ${SCALE}`);
  await pg.pgbench(['-i', '-s', String(SCALE), '-q', 'postgres'], { timeoutMs: 3_600_000 });
  await pg.query('VACUUM (FREEZE, ANALYZE)');
  await pg.query('CHECKPOINT');
  const dbBytes = Number((await pg.query<{ n: string }>(`SELECT pg_database_size('postgres')::text AS n`))[0]!.n);

  const samples: Sample[] = [];
  const backup = async (tool: Tool, kind: 'full' | 'incr', round: number) => {
    // Not timed: the archive backlog (pgbench's WAL) is drained first, or whichever tool goes first
    // would wait for it inside its backup.
    await switchAndWaitArchived(pg);
    if (tool === 'strata') {
      const r = await strata(['backup', '--type', kind, '--start-fast', '--json']);
      const result = (JSON.parse(r.stdout) as { result: { repoBytes: number; type: string } }).result;
      if (result.type !== kind) throw new Error(`strata took a ${result.type} backup, not ${kind}`);
      samples.push({ tool, round, kind, wallSeconds: r.wallSeconds, peakRssMiB: r.peakRssMiB, repoBytes: result.repoBytes });
    } else {
      const r = await pgbr(tool, ['backup', `--type=${kind}`]);
      const info = JSON.parse((await pgbr(tool, ['info', '--output=json'])).stdout) as {
        backup: { type: string; info: { repository: { delta: number } } }[];
      }[];
      const last = info[0]!.backup.at(-1)!;
      if (last.type !== kind) throw new Error(`${tool} took a ${last.type} backup, not ${kind}`);
      samples.push({ tool, round, kind, wallSeconds: r.wallSeconds, peakRssMiB: r.peakRssMiB, repoBytes: last.info.repository.delta });
    }
    const s = samples.at(-1)!;
    log(
      `  round ${round} ${kind.padEnd(4)} ${tool.padEnd(17)} ${s.wallSeconds.toFixed(2)} s  ${s.peakRssMiB.toFixed(0)} MiB RSS  ${(s.repoBytes / 2 ** 20).toFixed(1)} MiB stored`,
    );
  };

  log('measuring the machine ceilings (zstd -3 -T2, cold read) on the same files');
  const ceilings = await measureCeilings(pg.dataDir, work);
  const tools: Tool[] = ['strata', 'pgbackrest-block', 'pgbackrest'];
  const restores: RestoreSample[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 ? tools : [...tools].reverse();
    removeRestoreDirs(work);
    for (const tool of order) await backup(tool, 'full', round);
    await pg.pgbench(['-T', String(PGBENCH_SECONDS), '-c', '2', 'postgres']);
    for (const tool of order) await backup(tool, 'incr', round);
    const freeBytes = Math.ceil(dbBytes * 1.25);
    restores.push(...(await benchRestores({ work, strata, pgbr: (t, a) => pgbr(t as Tool, a), freeBytes }, order, round)));
    for (const s of restores.filter((r) => r.round === round))
      log(`  round ${round} ${s.kind.padEnd(7)} ${s.tool.padEnd(17)} ${s.wallSeconds.toFixed(2)} s  ${s.peakRssMiB.toFixed(0)} MiB RSS`);
  }

  const rows: string[] = [];
  const summary: Record<string, unknown> = {};
  for (const kind of ['full', 'incr'] as const) {
    for (const measure of ['wallSeconds', 'peakRssMiB', 'repoBytes'] as const) {
      const med = (tool: Tool) => median(samples.filter((s) => s.tool === tool && s.kind === kind).map((s) => s[measure]));
      const perRound = (other: Tool) =>
        Array.from({ length: ROUNDS }, (_, i) => {
          const get = (tool: Tool) => samples.find((s) => s.tool === tool && s.kind === kind && s.round === i + 1)![measure];
          return get('strata') / get(other);
        });
      const ratioBlock = median(perRound('pgbackrest-block'));
      const ratioPlain = median(perRound('pgbackrest'));
      summary[`${kind}.${measure}`] = {
        strata: med('strata'),
        pgbackrestBlock: med('pgbackrest-block'),
        pgbackrest: med('pgbackrest'),
        ratioVsBlock: ratioBlock,
        ratioVsPlain: ratioPlain,
        ratiosPerRoundVsBlock: perRound('pgbackrest-block'),
        ratiosPerRoundVsPlain: perRound('pgbackrest'),
      };
      const fmt = (v: number) =>
        measure === 'repoBytes'
          ? `${(v / 2 ** 20).toFixed(1)} MiB`
          : measure === 'wallSeconds'
            ? `${v.toFixed(2)} s`
            : `${v.toFixed(0)} MiB`;
      rows.push(
        `| ${kind} | ${measure} | ${fmt(med('strata'))} | ${fmt(med('pgbackrest-block'))} | ${fmt(med('pgbackrest'))} | ${ratioBlock.toFixed(2)} | ${ratioPlain.toFixed(2)} |`,
      );
    }
  }
  // What share of the physical limit each tool's full backup reached (end to end, start-up and WAL wait included).
  const ceilingLines = () => {
    const full = (tool: Tool) => median(samples.filter((s) => s.tool === tool && s.kind === 'full').map((s) => s.wallSeconds));
    const pct = (tool: Tool) => ((ceilings.zstdSeconds / full(tool)) * 100).toFixed(0);
    summary.ceilings = { ...ceilings, fullVsZstd: Object.fromEntries(tools.map((t) => [t, ceilings.zstdSeconds / full(t)])) };
    return [
      `Ceilings on the same ${ceilings.files} files (${(ceilings.bytes / 2 ** 20).toFixed(0)} MiB): zstd -3 -T2 ${ceilings.zstdSeconds.toFixed(2)} s (${ceilings.zstdMiBps.toFixed(0)} MiB/s, page cache warm); cold read ${ceilings.coldReadSeconds.toFixed(2)} s (${ceilings.coldReadMiBps.toFixed(0)} MiB/s, ${ceilings.coldMethod}); write + fsync ${ceilings.writeSeconds.toFixed(2)} s (${ceilings.writeMiBps.toFixed(0)} MiB/s).`,
      `Full backup wall as % of the zstd ceiling (zstd time / backup time): Strata ${pct('strata')}%, pgBackRest block ${pct('pgbackrest-block')}%, pgBackRest ${pct('pgbackrest')}%.`,
    ];
  };
  // The WAL archiving measures (e2e/bench/archive.ts), on their own cluster; BENCH_ARCHIVE=0 skips them.
  const archive = process.env.BENCH_ARCHIVE === '0' ? undefined : await runArchiveBench({ rounds: ROUNDS, log });
  // Encrypted vs clear full backups (e2e/bench/encrypt.ts), on their own cluster; BENCH_ENCRYPT=0 skips them.
  const encrypt = process.env.BENCH_ENCRYPT === '0' ? undefined : await runEncryptBench({ rounds: ROUNDS, scale: SCALE, log });
  const date = new Date().toISOString().replace(/[:.]/g, '-');
  const table = [
    `Strata vs pgBackRest 2.45, pgbench scale ${SCALE} (${(dbBytes / 2 ** 20).toFixed(0)} MiB), ${ROUNDS} rounds, incr after pgbench -T ${PGBENCH_SECONDS}; medians, ratios are medians of per-round Strata/pgBackRest.`,
    '',
    '| backup | measure | Strata | pgBackRest block | pgBackRest | ratio vs block | ratio vs plain |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    ...restoreRows(restores, summary, ROUNDS),
    '',
    ...ceilingLines(),
    ...(archive ? ['', archive.table] : []),
    ...(encrypt ? ['', encrypt.table] : []),
  ].join('\n');
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(
    path.join(RESULTS, `${date}.json`),
    `${JSON.stringify({ date, scale: SCALE, rounds: ROUNDS, dbBytes, samples, restores, ceilings, summary, archive, encrypt }, null, 2)}\n`,
  );
  fs.writeFileSync(path.join(RESULTS, `${date}.md`), `${table}\n`);
  log(`\n${table}\n\nwritten to ${path.join(RESULTS, date)}.{json,md}`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
} finally {
  await stopAllClusters();
}
