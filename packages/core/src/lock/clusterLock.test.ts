import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStrataError } from '../errors/index.js';
import type { Logger } from '../logger.js';
import { processStartTime } from '../os/processStart.js';
import { acquireClusterLock, lockFile, readLock, type LockHolder } from './clusterLock.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-lock-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

function recordingLogger(): Logger & { warnings: { obj: object; msg?: string }[] } {
  const warnings: { obj: object; msg?: string }[] = [];
  const noop = () => undefined;
  return { warnings, debug: noop, info: noop, error: noop, warn: (obj, msg) => warnings.push({ obj, msg }) };
}

describe('cluster locks', () => {
  it('lets one job hold a cluster and refuses a second, naming the holder (exit code 9)', async () => {
    const lock = await acquireClusterLock(dir, 'main', 'backup --type full');
    const held = await readLock(lockFile(dir, 'main'));
    expect(held).toMatchObject({ pid: process.pid, hostname: os.hostname(), job: 'backup --type full' });
    expect(held?.processStart).toBe(processStartTime(process.pid));
    const err: unknown = await acquireClusterLock(dir, 'main', 'expire').catch((e: unknown) => e);
    expect(isStrataError(err) && err.code).toBe('Precondition');
    expect(isStrataError(err) && err.exitCode).toBe(9);
    expect((err as Error).message).toContain(`"backup --type full" (pid ${process.pid} on ${os.hostname()}`);
    // Another cluster is independent.
    const other = await acquireClusterLock(dir, 'other', 'verify');
    await other.release();
    await lock.release();
    const again = await acquireClusterLock(dir, 'main', 'expire');
    again.releaseSync();
    await expect(fs.access(lockFile(dir, 'main'))).rejects.toThrow();
  });

  it('takes over a lock whose process is gone, with a log line', async () => {
    const stale: LockHolder = {
      pid: deadPid(),
      processStart: '1',
      hostname: os.hostname(),
      job: 'backup',
      acquiredAt: '2026-01-01T00:00:00Z',
    };
    await fs.writeFile(lockFile(dir, 'main'), JSON.stringify(stale));
    const log = recordingLogger();
    const lock = await acquireClusterLock(dir, 'main', 'backup --type incr', log);
    expect(lock.holder.pid).toBe(process.pid);
    expect((await readLock(lockFile(dir, 'main')))?.job).toBe('backup --type incr');
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]!.msg).toContain('stale lock');
    expect(log.warnings[0]!.obj).toMatchObject({ stalePid: stale.pid, staleJob: 'backup' });
    await lock.release();
  });

  it('treats a live pid with another start time (pid reuse) as stale, and a lock from another host as held', async () => {
    const reused: LockHolder = { pid: process.pid, processStart: '1', hostname: os.hostname(), job: 'verify', acquiredAt: 'x' };
    await fs.writeFile(lockFile(dir, 'main'), JSON.stringify(reused));
    const lock = await acquireClusterLock(dir, 'main', 'expire');
    await lock.release();
    const remote: LockHolder = { pid: deadPid(), processStart: '1', hostname: 'elsewhere.example', job: 'backup', acquiredAt: 'x' };
    await fs.writeFile(lockFile(dir, 'main'), JSON.stringify(remote));
    await expect(acquireClusterLock(dir, 'main', 'expire')).rejects.toThrow(/locked by "backup" \(pid \d+ on elsewhere\.example/);
  });

  it('lets exactly one of many concurrent takers replace a stale lock', async () => {
    const stale: LockHolder = { pid: deadPid(), processStart: '1', hostname: os.hostname(), job: 'backup', acquiredAt: 'x' };
    await fs.writeFile(lockFile(dir, 'main'), JSON.stringify(stale));
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => acquireClusterLock(dir, 'main', `job${i}`)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(String(r.reason)).toMatch(/locked by "job\d"/);
  });
});
