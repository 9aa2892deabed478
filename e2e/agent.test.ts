import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agents, killAgents, metric, readState, scrape, startAgent, waitFor, writeAgentConfig, type AgentState } from './harness/agent.js';
import { debianPgBin, freePort, stopAllClusters } from './harness/postgres.js';
import { StrataCluster } from './scenarios/strataCluster.js';

/** Measured numbers go to the test output (the report quotes them). */
function report(line: string): void {
  process.stdout.write(`${line}\n`);
}

afterAll(async () => {
  killAgents();
  await stopAllClusters();
}, 120_000);

/** A backup without a manifest that has written a pack: one is being copied now (or was interrupted). */
const seenIncomplete = new Set<string>();
function backupInProgress(repoDir: string): boolean {
  const root = path.join(repoDir, 'main', 'backup');
  for (const label of fs.existsSync(root) ? fs.readdirSync(root) : []) {
    if (seenIncomplete.has(label) || fs.existsSync(path.join(root, label, 'manifest'))) continue;
    const packs = path.join(root, label, 'pack');
    if (fs.existsSync(packs) && fs.readdirSync(packs).length > 0) {
      seenIncomplete.add(label);
      return true;
    }
  }
  return false;
}

describe('strata agent (PostgreSQL 15)', () => {
  it('schedules full, incr and a rehearsal under load, exports metrics, stops cleanly on SIGTERM and recovers from SIGKILL', async () => {
    const t0 = Date.now();
    // Small packs: an interrupted backup has visibly written some when it is stopped.
    const src = await StrataCluster.create({ version: 15, backup: { packSize: 1024 * 1024 } });
    const base = fs.readFileSync(src.configPath, 'utf8');
    const stateDir = path.join(src.scratch, 'state');
    await src.pg.pgbench(['-i', '-s', '3', 'postgres']);
    // Load for the whole scenario: pgbench against the cluster the agent protects.
    const asRoot = process.getuid?.() === 0;
    const pgbenchArgs = [
      '-h',
      src.pg.socketDir,
      '-p',
      String(src.pg.port),
      '-U',
      'postgres',
      '-T',
      '300',
      '-c',
      '2',
      '-R',
      '40',
      'postgres',
    ];
    const load = spawn(
      asRoot ? 'runuser' : debianPgBin('pgbench'),
      asRoot ? ['-u', 'postgres', '--', debianPgBin('pgbench'), ...pgbenchArgs] : pgbenchArgs,
      {
        detached: true,
        stdio: 'ignore',
      },
    );
    agents.add(load);
    const loadDone = new Promise((r) => load.on('exit', r));
    const phase = (name: string) => report(`${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    phase('cluster ready');

    // Phase 1: a full every few seconds.
    const port = await freePort();
    writeAgentConfig(src, base, { full: '*/3 * * * * *' }, port);
    let agent = startAgent(src.configPath);
    const diag = () => `${agent.lines.slice(-30).join('\n')}\n${agent.stderr.join('')}\n${JSON.stringify(readState(stateDir), null, 1)}`;
    const afterFull = await waitFor(
      'a full backup',
      () => readState(stateDir)?.clusters.main?.lastBackup.full && readState(stateDir),
      60_000,
      diag,
    );
    phase('full done');
    const fullLabel = afterFull.clusters.main!.lastBackup.full!.label;
    expect(fullLabel).toMatch(/^\d{8}-\d{6}F$/);

    // Phase 2 (SIGHUP): incrementals every 3 s and a rehearsal; a rehearsal holds the cluster, so incrs are skipped meanwhile.
    const agentPid = afterFull.pid;
    // The rehearsal once, a few seconds from now (cron fires it once a minute at that second).
    const rehearsalSecond = new Date(Date.now() + 8000).getUTCSeconds();
    writeAgentConfig(src, base, { incr: '*/4 * * * * *', restoreTest: `${rehearsalSecond} * * * * *` }, port);
    process.kill(agentPid, 'SIGHUP');
    await waitFor('configuration reloaded', () => agent.lines.some((l) => l.includes('configuration reloaded')), 10_000, diag);
    const afterIncr = await waitFor(
      'two incremental backups and a rehearsal',
      () => {
        const s = readState(stateDir)?.clusters.main;
        return s && (s.jobs.incr?.runs.succeeded ?? 0) >= 2 && s.lastRehearsal ? s : undefined;
      },
      120_000,
      diag,
    );
    phase('incrs and rehearsal done');
    expect(afterIncr.lastBackup.incr!.label.startsWith(`${fullLabel}_`)).toBe(true);
    expect(afterIncr.lastRehearsal, diag()).toMatchObject({ passed: true });
    const rto = afterIncr.lastRehearsal!.rtoSeconds!;
    const rpo = afterIncr.lastRehearsal!.rpoSeconds!;
    report(`agent rehearsal: RTO ${rto}s RPO ${rpo}s; incr runs ${JSON.stringify(afterIncr.jobs.incr!.runs)}`);
    expect(afterIncr.jobs.restoreTest!.last!.outcome).toBe('succeeded');
    expect(afterIncr.jobs.full).toBeUndefined();

    const m = await scrape(port);
    expect(metric(m, 'strata_backup_last_success_timestamp_seconds', 'cluster="main",type="full"')).toBeGreaterThan(t0 / 1000);
    expect(metric(m, 'strata_backup_last_success_timestamp_seconds', 'cluster="main",type="incr"')).toBeGreaterThan(t0 / 1000);
    expect(metric(m, 'strata_backup_last_size_bytes', 'cluster="main",type="full"')).toBe(afterIncr.lastBackup.full!.bytes);
    expect(metric(m, 'strata_backup_last_size_bytes', 'cluster="main",type="full"')).toBeGreaterThan(40 * 1024 * 1024);
    expect(metric(m, 'strata_rehearsal_last_passed', 'cluster="main"')).toBe(1);
    expect(metric(m, 'strata_rehearsal_rto_seconds', 'cluster="main"')).toBe(rto);
    expect(metric(m, 'strata_rehearsal_rpo_seconds', 'cluster="main"')).toBe(rpo);
    expect(metric(m, 'strata_job_runs_total', 'cluster="main",job="incr",outcome="succeeded"')).toBeGreaterThanOrEqual(2);
    expect(metric(m, 'strata_job_failures_total', 'cluster="main",job="incr"')).toBe(0);
    expect(metric(m, 'strata_postgres_up', 'cluster="main"')).toBe(1);
    const lag = metric(m, 'strata_wal_archive_lag_segments', 'cluster="main"');
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThan(5);
    expect(metric(m, 'strata_wal_archive_lag_seconds', 'cluster="main"')).toBeGreaterThanOrEqual(0);
    expect(metric(m, 'strata_wal_last_archived_timestamp_seconds', 'cluster="main"')).toBeGreaterThan(t0 / 1000);
    expect(m).not.toMatch(/NaN/);

    const status = await src.strata(['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const st = (status.json as { result: AgentState & { agentRunning: boolean } }).result;
    expect(st.agentRunning).toBe(true);
    expect(st.clusters.main!.jobs.incr!.nextRun).not.toBeNull();

    // Phase 3: SIGTERM while a full backup runs.
    writeAgentConfig(src, base, { full: '*/2 * * * * *' }, port);
    process.kill(agentPid, 'SIGHUP');
    await waitFor(
      'a full backup writing packs',
      () => readState(stateDir)?.clusters.main?.running?.job === 'full' && backupInProgress(src.repoDir),
      90_000,
      diag,
    );
    process.kill(agentPid, 'SIGTERM');
    const stopped = await agent.exited;
    phase('stopped by SIGTERM');
    expect(stopped.code, diag()).toBe(0);
    const afterTerm = readState(stateDir)!;
    expect(afterTerm.stoppedAt).toBeDefined();
    expect(afterTerm.clusters.main!.running).toBeUndefined();
    const termOutcome = afterTerm.clusters.main!.jobs.full!.last!.outcome;
    report(`full backup at SIGTERM: ${termOutcome}`);
    expect(termOutcome).toBe('interrupted');
    expect(fs.existsSync(path.join(stateDir, 'main.lock'))).toBe(false);
    const verify = await src.strata(['verify', '--json']);
    expect(verify.code, verify.stdout).toBe(0);
    const fullsBefore = fs.readdirSync(path.join(src.repoDir, 'main', 'backup')).filter((l) => l.endsWith('F'));

    // Phase 4: SIGKILL the agent and its job mid-backup; the restarted agent clears the stale lock and backs up.
    agent = startAgent(src.configPath);
    // Killed once the backup writes packs (not after a fixed delay: on a fast machine the whole
    // backup finished within 700 ms and took its lock with it). The lock is read just before.
    await waitFor(
      'a running full backup writing packs',
      () =>
        readState(stateDir)?.clusters.main?.running?.job === 'full' &&
        fs.existsSync(path.join(stateDir, 'main.lock')) &&
        backupInProgress(src.repoDir),
      60_000,
      diag,
    );
    const lock = JSON.parse(fs.readFileSync(path.join(stateDir, 'main.lock'), 'utf8')) as { pid: number; job: string };
    process.kill(-agent.child.pid!, 'SIGKILL');
    expect((await agent.exited).signal).toBe('SIGKILL');
    expect(lock.job).toBe('backup --type full');
    // The killed job had no chance to remove its lock: the restarted agent finds it stale.
    expect(fs.existsSync(path.join(stateDir, 'main.lock'))).toBe(true);
    const procState = () =>
      fs.existsSync(`/proc/${lock.pid}/stat`) ? fs.readFileSync(`/proc/${lock.pid}/stat`, 'utf8').split(') ')[1]![0] : 'gone';
    // SIGKILL takes effect asynchronously: wait until the job is gone (or a zombie nobody reaped yet).
    await waitFor('the killed job to be gone', () => ['gone', 'Z'].includes(procState()!), 10_000, diag);
    phase('killed by SIGKILL');
    const before = readState(stateDir)!.clusters.main!.jobs.full!.runs.succeeded;
    agent = startAgent(src.configPath);
    await waitFor(
      'a full backup after the restart',
      () => (readState(stateDir)?.clusters.main?.jobs.full?.runs.succeeded ?? 0) > before,
      60_000,
      diag,
    );
    const cleared = agent.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'cleared a stale lock left by a process that is gone');
    expect(cleared, diag()).toMatchObject({ stalePid: lock.pid, staleJob: 'backup --type full', job: 'full' });
    const newPid = readState(stateDir)!.pid;
    process.kill(newPid, 'SIGTERM');
    expect((await agent.exited).code).toBe(0);
    const fullsAfter = fs
      .readdirSync(path.join(src.repoDir, 'main', 'backup'))
      .filter((l) => l.endsWith('F') && fs.existsSync(path.join(src.repoDir, 'main', 'backup', l, 'manifest')));
    expect(fullsAfter.length).toBeGreaterThan(
      fullsBefore.filter((l) => fs.existsSync(path.join(src.repoDir, 'main', 'backup', l, 'manifest'))).length,
    );
    const verify2 = await src.strata(['verify', '--json']);
    expect(verify2.code, verify2.stdout).toBe(0);
    process.kill(-load.pid!, 'SIGTERM');
    await loadDone;
    report(`agent e2e: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
