/**
 * Encryption cost of `npm run bench` (issue 6, acceptance 6): Strata full backups of the same
 * PostgreSQL 15 cluster into a clear repository and into an encrypted one (encrypt-pgp, public key
 * only, as on a database host), in the same run, alternating (A B, then B A). Throughput is the
 * database's bytes per wall second of the whole command; the verdict is the median of per-round
 * encrypted/clear throughput ratios (target ≥ 0.85).
 *
 * Runnable alone (`node e2e/dist/bench/encrypt.js --scale 10 --rounds 3`) or from run.ts through
 * runEncryptBench() on run.ts's cluster.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as openpgp from 'openpgp';
import { PgCluster, chownToPostgres, makeScratchDir, runAsPostgres, stopAllClusters } from '../harness/postgres.js';
import { STRATA_BIN, strataCommandLine, writeStrataConfig } from '../harness/strata.js';
import { median, switchAndWaitArchived } from './stats.js';

export interface EncryptBenchOptions {
  rounds?: number;
  /** pgbench scale of the cluster made when none is given. */
  scale?: number;
  log?: (line: string) => void;
}

export interface EncryptSample {
  repo: 'clear' | 'encrypted';
  round: number;
  wallSeconds: number;
  /** Database bytes read per wall second. */
  mibPerSecond: number;
  /** User + system CPU seconds of the backup command (less sensitive than wall time to a busy machine). */
  cpuSeconds: number;
  repoBytes: number;
}

export interface EncryptBenchResult {
  samples: EncryptSample[];
  summary: {
    clearMiBps: number;
    encryptedMiBps: number;
    ratio: number;
    ratiosPerRound: number[];
    /** Median of per-round encrypted/clear CPU seconds. */
    cpuRatio: number;
    /** Median wall milliseconds of one sync archive-push of a 16 MiB segment. */
    archivePushMs?: { clear: number; encrypted: number; segments: number };
    target: number;
    met: boolean;
  };
  table: string;
}

/** Measures on its own PostgreSQL cluster (archiving to both repositories in parallel). */
export async function runEncryptBench(opts: EncryptBenchOptions = {}): Promise<EncryptBenchResult> {
  const rounds = opts.rounds ?? 3;
  const scale = opts.scale ?? 10;
  const log = opts.log ?? ((s: string) => void process.stdout.write(`${s}\n`));
  const work = makeScratchDir('strata-bench-encrypt-').dir;
  const { publicKey } = await openpgp.generateKey({ type: 'curve25519', userIDs: [{ name: 'bench' }], format: 'armored' });
  const pubFile = path.join(work, 'bench.pub.asc');
  fs.writeFileSync(pubFile, publicKey);
  const configs = {
    clear: path.join(work, 'clear.yaml'),
    encrypted: path.join(work, 'encrypted.yaml'),
    // Repositories PostgreSQL does not archive into: sync archive-push of segments they lack is timed.
    clearPush: path.join(work, 'clear-push.yaml'),
    encryptedPush: path.join(work, 'encrypted-push.yaml'),
  };
  const pushes = [configs.clear, configs.encrypted].map((c) => `${strataCommandLine()} archive-push --config ${c} %p`);
  const pg = await PgCluster.init({
    version: 15,
    settings: {
      wal_level: 'replica',
      archive_mode: 'on',
      archive_command: `${pushes[0]} & a=$!; ${pushes[1]} & b=$!; wait $a && wait $b`,
      max_wal_size: '4GB',
      checkpoint_timeout: '30min',
    },
  });
  for (const [clear, enc, suffix] of [
    [configs.clear, configs.encrypted, ''],
    [configs.clearPush, configs.encryptedPush, '-push'],
  ] as const) {
    writeStrataConfig(clear, pg, path.join(work, `clear-repo${suffix}`));
    const repo = path.join(work, `encrypted-repo${suffix}`);
    writeStrataConfig(enc, pg, repo, {}, [
      { name: 'encrypted', plugin: 'fs', path: repo, encryption: { plugin: 'encrypt-pgp', publicKeys: [pubFile] } },
    ]);
  }
  for (const f of fs.readdirSync(work)) chownToPostgres(path.join(work, f));
  await pg.start({ waitForPromotion: true });
  const strata = async (repo: keyof typeof configs, args: string[]) => {
    const started = process.hrtime.bigint();
    const res = await runAsPostgres(
      '/usr/bin/time',
      ['-f', 'STRATA_BENCH_CPU=%U+%S', process.execPath, '--max-semi-space-size=1', STRATA_BIN, ...args, '--config', configs[repo]],
      { timeoutMs: 3_600_000 },
    );
    if (res.code !== 0) throw new Error(`strata ${args.join(' ')} (${repo}) failed (${res.code}):\n${res.stderr}`);
    const cpu = /STRATA_BENCH_CPU=([\d.]+)\+([\d.]+)/.exec(res.stderr);
    const cpuSeconds = cpu ? Number(cpu[1]) + Number(cpu[2]) : NaN;
    return { wallSeconds: Number(process.hrtime.bigint() - started) / 1e9, cpuSeconds, stdout: res.stdout };
  };
  for (const repo of ['clear', 'encrypted', 'clearPush', 'encryptedPush'] as const) await strata(repo, ['init']);
  log(`encryption bench: loading pgbench scale ${scale}`);
  await pg.pgbench(['-i', '-s', String(scale), '-q', 'postgres'], { timeoutMs: 3_600_000 });
  await pg.query('VACUUM (FREEZE, ANALYZE)');
  await pg.query('CHECKPOINT');

  const samples: EncryptSample[] = [];
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 ? (['clear', 'encrypted'] as const) : (['encrypted', 'clear'] as const);
    for (const repo of order) {
      await switchAndWaitArchived(pg);
      const r = await strata(repo, ['backup', '--type', 'full', '--start-fast', '--json']);
      const result = (JSON.parse(r.stdout) as { result: { bytes: number; repoBytes: number } }).result;
      const sample = {
        repo,
        round,
        wallSeconds: r.wallSeconds,
        mibPerSecond: result.bytes / 2 ** 20 / r.wallSeconds,
        cpuSeconds: r.cpuSeconds,
        repoBytes: result.repoBytes,
      };
      samples.push(sample);
      log(
        `  round ${round} full ${repo.padEnd(9)} ${sample.wallSeconds.toFixed(2)} s  ${sample.mibPerSecond.toFixed(0)} MiB/s  ${sample.cpuSeconds.toFixed(2)} s CPU`,
      );
    }
  }
  // Sync archive-push, one process per segment as PostgreSQL runs it: the encrypted push also loads
  // openpgp and wraps a data key (one per process).
  const segments = fs
    .readdirSync(path.join(pg.dataDir, 'pg_wal'))
    .filter((f) => /^[0-9A-F]{24}$/.test(f))
    .sort()
    .slice(0, 10);
  const pushSamples: { repo: 'clear' | 'encrypted'; wallSeconds: number }[] = [];
  for (const [i, seg] of segments.entries()) {
    const order = i % 2 ? (['encryptedPush', 'clearPush'] as const) : (['clearPush', 'encryptedPush'] as const);
    for (const repo of order) {
      const r = await strata(repo, ['archive-push', path.join(pg.dataDir, 'pg_wal', seg)]);
      pushSamples.push({ repo: repo === 'clearPush' ? 'clear' : 'encrypted', wallSeconds: r.wallSeconds });
    }
  }
  const pushMs = (repo: 'clear' | 'encrypted') => median(pushSamples.filter((s) => s.repo === repo).map((s) => s.wallSeconds)) * 1000;
  if (segments.length)
    log(`  archive-push per segment: clear ${pushMs('clear').toFixed(0)} ms, encrypted ${pushMs('encrypted').toFixed(0)} ms`);
  const med = (repo: EncryptSample['repo']) => median(samples.filter((s) => s.repo === repo).map((s) => s.mibPerSecond));
  const ratiosPerRound = Array.from({ length: rounds }, (_, i) => {
    const get = (repo: EncryptSample['repo']) => samples.find((s) => s.repo === repo && s.round === i + 1)!.mibPerSecond;
    return get('encrypted') / get('clear');
  });
  const ratio = median(ratiosPerRound);
  const cpuRatio = median(
    Array.from({ length: rounds }, (_, i) => {
      const get = (repo: EncryptSample['repo']) => samples.find((s) => s.repo === repo && s.round === i + 1)!.cpuSeconds;
      return get('encrypted') / get('clear');
    }),
  );
  const summary = {
    clearMiBps: med('clear'),
    encryptedMiBps: med('encrypted'),
    ratio,
    ratiosPerRound,
    cpuRatio,
    archivePushMs: segments.length ? { clear: pushMs('clear'), encrypted: pushMs('encrypted'), segments: segments.length } : undefined,
    target: 0.85,
    met: ratio >= 0.85,
  };
  const table = [
    `Encryption (encrypt-pgp, public key only): Strata full backups of pgbench scale ${scale}, ${rounds} rounds, same cluster; ratio = median of per-round encrypted/clear throughput (target ≥ 0.85).`,
    '',
    '| full backup | clear | encrypted | ratio |',
    '|---|---|---|---|',
    `| throughput | ${summary.clearMiBps.toFixed(0)} MiB/s | ${summary.encryptedMiBps.toFixed(0)} MiB/s | ${ratio.toFixed(2)} (per round: ${ratiosPerRound.map((r) => r.toFixed(2)).join(', ')}) |`,
    `| CPU (user+sys) | ${median(samples.filter((s) => s.repo === 'clear').map((s) => s.cpuSeconds)).toFixed(2)} s | ${median(samples.filter((s) => s.repo === 'encrypted').map((s) => s.cpuSeconds)).toFixed(2)} s | ${cpuRatio.toFixed(2)} |`,
    ...(summary.archivePushMs
      ? [
          `| sync archive-push per segment (${summary.archivePushMs.segments}) | ${summary.archivePushMs.clear.toFixed(0)} ms | ${summary.archivePushMs.encrypted.toFixed(0)} ms | ${(summary.archivePushMs.clear / summary.archivePushMs.encrypted).toFixed(2)} |`,
        ]
      : []),
  ].join('\n');
  await pg.stop();
  return { samples, summary, table };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const flag = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  try {
    const res = await runEncryptBench({
      scale: Number(flag('scale') ?? process.env.BENCH_SCALE ?? 10),
      rounds: Number(flag('rounds') ?? process.env.BENCH_ROUNDS ?? 3),
    });
    const results = path.resolve(path.dirname(STRATA_BIN), '..', '..', '..', 'bench', 'results');
    const date = new Date().toISOString().replace(/[:.]/g, '-');
    fs.mkdirSync(results, { recursive: true });
    fs.writeFileSync(path.join(results, `${date}-encrypt.json`), `${JSON.stringify({ date, ...res }, null, 2)}\n`);
    fs.writeFileSync(path.join(results, `${date}-encrypt.md`), `${res.table}\n`);
    process.stdout.write(`\n${res.table}\n\nwritten to ${path.join(results, date)}-encrypt.{json,md}\n`);
  } catch (err) {
    process.stderr.write(`encryption bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await stopAllClusters();
  }
}
