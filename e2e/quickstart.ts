/**
 * `npm run quickstart`: the main job on the embedded default, start to finish. A throwaway
 * PostgreSQL 15 cluster archives its WAL with Strata into a filesystem repository, gets a full
 * backup, suffers an UPDATE without WHERE, and is restored to one second before it.
 * Pass --keep to leave the directories (and see the repository) afterwards.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PgCluster, chownToPostgres, freePort, makeScratchDir, shellQuote, stopAllClusters } from './harness/postgres.js';
import { runStrata, strataCommandLine, writeStrataConfig } from './harness/strata.js';

const keep = process.argv.includes('--keep');
if (keep) process.env.STRATA_E2E_KEEP_SCRATCH = '1';

const say = (text: string) => process.stdout.write(`\n▶ ${text}\n`);
const show = (text: string) => process.stdout.write(`${text.replace(/\n+$/, '').replace(/^/gm, '    ')}\n`);

async function strata(configPath: string, args: string[]): Promise<string> {
  process.stdout.write(`  $ strata ${args.map((a) => (/^[\w./=:@%+-]+$/.test(a) ? a : shellQuote(a))).join(' ')}\n`);
  const res = await runStrata(args, { config: configPath, timeoutMs: 600_000 });
  if (res.code !== 0) throw new Error(`strata ${args[0]} failed (exit ${res.code}):\n${res.stderr}${res.stdout}`);
  if (res.stdout.trim()) show(res.stdout.trim());
  return res.stdout;
}

async function main(): Promise<void> {
  const work = makeScratchDir('strata-quickstart-').dir;
  const configPath = path.join(work, 'strata.yaml');
  const repoDir = path.join(work, 'repo');

  say(`Starting a throwaway PostgreSQL 15 cluster (in ${work})`);
  const source = await PgCluster.init({
    version: 15,
    settings: {
      wal_level: 'replica',
      archive_mode: 'on',
      archive_command: `${strataCommandLine()} archive-push --config ${configPath} %p`,
    },
  });
  writeStrataConfig(configPath, source, repoDir);
  chownToPostgres(configPath);
  show(fs.readFileSync(configPath, 'utf8'));
  await source.start({ waitForPromotion: true });
  await strata(configPath, ['init']);

  say('Creating 1000 orders and taking a full backup');
  await source.query(`CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, status text NOT NULL)`);
  await source.query(
    `INSERT INTO orders (customer, status) SELECT 'customer ' || g, (ARRAY['paid','shipped'])[1 + g % 2] FROM generate_series(1, 1000) g`,
  );
  await strata(configPath, ['backup', '--type', 'full', '--start-fast']);

  say('200 more orders arrive after the backup (only the archived WAL has them)');
  await source.query(`INSERT INTO orders (customer, status) SELECT 'late customer ' || g, 'paid' FROM generate_series(1, 200) g`);
  await new Promise((r) => setTimeout(r, 2000));

  say("The incident: UPDATE orders SET status = 'canceled'  -- no WHERE clause");
  const out = await source.psql(`BEGIN; SELECT now()::text; UPDATE orders SET status = 'canceled'; COMMIT;`);
  const incidentAt = out.trim().split('\n')[0]!;
  show(`committed at ${incidentAt}`);
  show(await source.psql('SELECT status, count(*) FROM orders GROUP BY status ORDER BY status'));
  await source.query('SELECT pg_switch_wal()');
  await waitArchived(source);
  await strata(configPath, ['info']);

  const [{ t: target }] = (await source.query<{ t: string }>(`SELECT ($1::timestamptz - interval '1 second')::text AS t`, [
    incidentAt,
  ])) as [{ t: string }];
  say(`Restoring to one second before the incident (${target})`);
  const restoreDir = makeScratchDir('strata-quickstart-restore-').dir;
  const pgdata = path.join(restoreDir, 'data');
  await strata(configPath, ['restore', '--pgdata', pgdata, '--target-time', target, '--target-action', 'promote', '--archive-mode', 'off']);
  const socketDir = path.join(restoreDir, 'sock');
  fs.mkdirSync(socketDir);
  chownToPostgres(socketDir);
  const restored = PgCluster.attach({ version: 15, dataDir: pgdata, port: await freePort(), socketDir });
  await restored.start({ waitForPromotion: true, timeoutMs: 120_000 });

  say('The restored cluster: every order back, including the 200 taken after the backup');
  const summary = await restored.psql('SELECT status, count(*) FROM orders GROUP BY status ORDER BY status');
  show(summary);
  const total = Number((await restored.psql('SELECT count(*) FROM orders')).trim());
  const canceled = Number((await restored.psql(`SELECT count(*) FROM orders WHERE status = 'canceled'`)).trim());
  if (total !== 1200 || canceled !== 0) throw new Error(`restore did not bring the orders back: ${total} orders, ${canceled} canceled`);
  say(`Done: 1200 orders, none canceled.${keep ? ` Kept ${work} and ${restoreDir}.` : ''}`);
}

async function waitArchived(pg: PgCluster): Promise<void> {
  const [{ w }] = (await pg.query<{ w: string }>(`SELECT pg_walfile_name(pg_current_wal_lsn() - 1) AS w`)) as [{ w: string }];
  for (let i = 0; i < 300; i++) {
    const [s] = await pg.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver');
    if (s?.last && s.last >= w) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`WAL ${w} was not archived within 60 s; see ${pg.logFile}`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`\nquickstart failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await stopAllClusters();
}
