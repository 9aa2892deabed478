import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stopAllClusters } from './harness/postgres.js';
import { STRATA_BIN, runStrata } from './harness/strata.js';
import { StrataCluster, chownRecursive } from './scenarios/strataCluster.js';

/** Measured numbers go to the test output (the report quotes them). */
function report(line: string): void {
  process.stdout.write(`${line}\n`);
}

afterAll(() => stopAllClusters(), 120_000);

interface Rehearsal {
  passed: boolean;
  label: string;
  rtoSeconds?: number;
  rpoSeconds?: number;
  recoveredTo?: string;
  newestSegment?: string;
  error?: string;
  checks: { name: string; kind: string; passed: boolean; skipped?: boolean; detail: string }[];
  tables: { name: string; rows: number }[];
  key?: string;
}

/** Adds cluster keys (YAML lines indented under clusters.main) to a config written by the harness. */
function addClusterKeys(configPath: string, lines: string[]): void {
  const text = fs.readFileSync(configPath, 'utf8');
  fs.writeFileSync(configPath, text.replace('    user: postgres\n', `    user: postgres\n${lines.map((l) => `    ${l}\n`).join('')}`));
}

describe('strata restore-test (PostgreSQL 15)', () => {
  it('rehearses the newest backup with all archived WAL, reports RTO/RPO, and names a missing segment', async () => {
    const src = await StrataCluster.create({ version: 15 });
    const scratchRoot = path.join(src.scratch, 'rehearsals');
    fs.mkdirSync(scratchRoot);
    chownRecursive(scratchRoot);
    addClusterKeys(src.configPath, [
      'rehearsal:',
      `  scratchDir: ${scratchRoot}`,
      '  checks:',
      '    - { name: orders-after-backup, sql: "SELECT count(*) FROM orders", expect: 3000 }',
      '    - { name: last-order, sql: "SELECT max(id) FROM orders", expect: "3000" }',
    ]);
    await src.pg.pgbench(['-i', '-s', '2', 'postgres']);
    await src.pg.query('CREATE TABLE orders (id int primary key, note text)');
    await src.pg.query(`INSERT INTO orders SELECT g, 'before' FROM generate_series(1, 1000) g`);
    const label = await src.backup();
    // WAL after the backup: three segments, each holding part of the rows the checks expect.
    for (const from of [1001, 2001]) {
      await src.pg.query(`INSERT INTO orders SELECT g, 'after' FROM generate_series(${from}, ${from + 999}) g`);
      await src.pg.pgbench(['-t', '200', '-c', '2', 'postgres']);
      await src.switchWalAndWait();
    }
    const middle = await src.switchWalAndWait();
    await src.pg.query('UPDATE orders SET note = $1 WHERE id = 1', ['last']);
    await src.switchWalAndWait();

    // Ctrl-C while the scratch cluster runs: it is stopped and removed, nothing is stored.
    const asRoot = process.getuid?.() === 0;
    const cmd = [...(asRoot ? ['-u', 'postgres', '--', process.execPath] : []), STRATA_BIN, 'restore-test', '--config', src.configPath];
    const child = spawn(asRoot ? 'runuser' : process.execPath, cmd, { detached: true, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const pidFile = () =>
      fs
        .readdirSync(scratchRoot)
        .map((d) => path.join(scratchRoot, d, 'data', 'postmaster.pid'))
        .find((f) => fs.existsSync(f));
    const deadline = Date.now() + 120_000;
    let postmaster: string | undefined;
    while (!(postmaster = pidFile())) {
      if (Date.now() > deadline) throw new Error('the rehearsal cluster did not start within 120 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    const pmPid = Number(fs.readFileSync(postmaster, 'utf8').split('\n')[0]);
    process.kill(-child.pid!, 'SIGINT');
    expect(await exited).toBe(10);
    expect(fs.readdirSync(scratchRoot)).toEqual([]);
    // The postmaster is gone (or a zombie nobody reaped yet: state Z).
    const pmState = fs.existsSync(`/proc/${pmPid}/stat`) ? fs.readFileSync(`/proc/${pmPid}/stat`, 'utf8').split(') ')[1]![0] : 'gone';
    expect(['gone', 'Z']).toContain(pmState);
    expect(fs.existsSync(path.join(src.repoDir, 'main', 'rehearsal'))).toBe(false);

    // As root (how CI runs; when root), PostgreSQL runs as the owner of the restored files.
    const started = Date.now();
    const res = await runStrata(['restore-test', '--json'], { config: src.configPath, asPostgres: false, timeoutMs: 300_000 });
    const seconds = (Date.now() - started) / 1000;
    expect(res.code, `${res.stderr}\n${res.stdout}`).toBe(0);
    const r = (res.json as { result: Rehearsal }).result;
    report(`restore-test: passed=${r.passed} RTO=${r.rtoSeconds}s RPO=${r.rpoSeconds}s wall=${seconds.toFixed(1)}s`);
    expect(r.passed).toBe(true);
    expect(r.label).toBe(label);
    expect(r.rtoSeconds).toBeGreaterThan(0);
    expect(r.rtoSeconds).toBeLessThan(seconds);
    expect(r.rpoSeconds).toBeGreaterThanOrEqual(0);
    expect(r.rpoSeconds).toBeLessThan(120);
    const byName = new Map(r.checks.map((c) => [c.name, c]));
    expect(byName.get('promoted')?.passed).toBe(true);
    expect(byName.get('wal-continuity')?.passed).toBe(true);
    expect(byName.get('replayed-all-wal')?.passed).toBe(true);
    expect(byName.get('orders-after-backup')).toMatchObject({ passed: true, detail: 'returned 3000' });
    expect(byName.get('last-order')?.passed).toBe(true);
    expect(byName.get('pg_amcheck')).toMatchObject({ passed: true });
    expect(byName.get('pg_amcheck')?.skipped).toBeUndefined();
    expect(r.tables[0]).toEqual({ name: 'public.pgbench_accounts', rows: 200000 });
    expect(r.tables).toContainEqual({ name: 'public.orders', rows: 3000 });
    // Everything the rehearsal started is gone.
    expect(fs.readdirSync(scratchRoot)).toEqual([]);
    const stray = await src.pg.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'strata-rehearsal'`,
    );
    expect(stray[0]!.n).toBe('0');

    // Stored in the repository and shown by info.
    expect(r.key).toMatch(/^main\/rehearsal\/\d{8}-\d{9}$/);
    expect(fs.existsSync(path.join(src.repoDir, ...r.key!.split('/')))).toBe(true);
    // Read by the user that wrote it (the fs plugin writes objects 0640).
    const info = await runStrata(['info', '--json'], { config: src.configPath, asPostgres: false });
    expect(info.code, info.stderr).toBe(0);
    const last = (info.json as { result: { lastRehearsal?: Rehearsal } }).result.lastRehearsal;
    expect(last).toMatchObject({ passed: true, label, rtoSeconds: r.rtoSeconds, rpoSeconds: r.rpoSeconds });
    const human = await runStrata(['info'], { config: src.configPath, asPostgres: false });
    expect(human.stdout).toContain(`from backup ${label}: PASSED`);

    // A segment missing in the middle of the archive: the rehearsal fails and names it.
    const clone = src.cloneRepo('holed');
    addClusterKeys(clone.configPath, ['rehearsal:', `  scratchDir: ${scratchRoot}`]);
    const segDir = path.join(clone.repoDir, 'main', 'wal', middle.slice(0, 16));
    const victim = fs.readdirSync(segDir).find((f) => f.startsWith(`${middle}-`))!;
    fs.rmSync(path.join(segDir, victim));
    const bad = await runStrata(['restore-test', '--json'], { config: clone.configPath, timeoutMs: 300_000 });
    expect(bad.code, bad.stderr).toBe(5);
    const b = (bad.json as { result: Rehearsal }).result;
    expect(b.passed).toBe(false);
    expect(b.error).toContain(`WAL segment ${middle} is missing`);
    expect(bad.stdout).toContain(middle);
    const human2 = await runStrata(['restore-test'], { config: clone.configPath, timeoutMs: 300_000 });
    expect(human2.code).toBe(5);
    expect(human2.stdout).toContain(`FAILED`);
    expect(human2.stdout).toContain(middle);
    expect(fs.readdirSync(scratchRoot)).toEqual([]);
  });
});
