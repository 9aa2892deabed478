import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StrataError } from '../errors/index.js';
import type { ArchivePushResult } from './archive.js';
import { processStartTime } from '../os/processStart.js';
import { ArchiveSpool, fileIdentity, spoolDir } from './spool.js';

const WAL = '000000010000000000000001';

function result(walName = WAL): ArchivePushResult {
  return {
    walName,
    key: `main/wal/x/${walName}-${'a'.repeat(64)}.zst`,
    sha256: 'a'.repeat(64),
    size: 10,
    storedBytes: 5,
    alreadyArchived: false,
  };
}

/** A pid that existed and no longer does. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

describe('ArchiveSpool', () => {
  let tmp: string;
  let spool: ArchiveSpool;
  let walPath: string;

  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(tmpdir(), 'strata-spool-'));
    spool = new ArchiveSpool(spoolDir(path.join(tmp, 'spool'), 'main', 'local'));
    await spool.create();
    walPath = path.join(tmp, 'pg_wal', WAL);
    await fs.mkdir(path.dirname(walPath));
    await fs.writeFile(walPath, 'wal bytes');
  });

  afterEach(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('lays the spool out per cluster and repository', () => {
    expect(spool.dir).toBe(path.join(tmp, 'spool', 'main', 'local', 'archive-push'));
  });

  it('answers nothing until a stored marker for this very file exists, then answers stored', async () => {
    expect(await spool.take(walPath)).toBeUndefined();
    await spool.writeStored(WAL, { result: result(), source: await fileIdentity(walPath) });
    expect(await spool.take(walPath)).toEqual({ kind: 'stored', result: result() });
    // Kept until the pusher sees PostgreSQL marked the file done: a repeated call answers the same.
    expect(await spool.take(walPath)).toEqual({ kind: 'stored', result: result() });
    expect((await fs.readdir(spool.dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('never trusts a stored marker left by another file of the same name', async () => {
    await spool.writeStored(WAL, { result: result(), source: await fileIdentity(walPath) });
    // PostgreSQL recreated the name (a restored cluster): another inode, other bytes.
    await fs.rm(walPath);
    await fs.writeFile(walPath, 'other wal bytes');
    expect(await spool.take(walPath)).toBeUndefined();
    expect((await spool.markers()).stored.has(WAL)).toBe(false);
  });

  it('reports an error marker once, with its code, message and hint, so the next attempt retries', async () => {
    await spool.writeError(
      WAL,
      new StrataError('PermissionDenied', 'cannot write main/wal/x: permission denied', { hint: 'fix the repository permissions' }),
    );
    const state = await spool.take(walPath);
    expect(state?.kind).toBe('error');
    const err = (state as { error: StrataError }).error;
    expect(err).toBeInstanceOf(StrataError);
    expect(err.code).toBe('PermissionDenied');
    expect(err.exitCode).toBe(7);
    expect(err.message).toBe('cannot write main/wal/x: permission denied');
    expect(err.hint).toBe('fix the repository permissions');
    expect(await spool.take(walPath)).toBeUndefined();
  });

  it('forgets a torn marker instead of failing on it', async () => {
    await fs.writeFile(path.join(spool.dir, `${WAL}.ok`), '{"result":');
    expect(await spool.take(walPath)).toBeUndefined();
    expect(await fs.readdir(spool.dir)).toEqual([]);
  });

  it('prunes only the markers of files PostgreSQL no longer asks about', async () => {
    const other = '000000010000000000000002';
    await spool.writeStored(WAL, { result: result(), source: await fileIdentity(walPath) });
    await spool.writeStored(other, { result: result(other), source: await fileIdentity(walPath) });
    await spool.writeError('000000010000000000000003', new Error('boom'));
    await spool.prune(new Set([other]), await spool.markers());
    expect((await fs.readdir(spool.dir)).sort()).toEqual([`${other}.ok`]);
  });

  describe('pusher lock', () => {
    it('is held by one live process at a time', async () => {
      expect(await spool.lock()).toBe(true);
      expect(spool.holder()).toBe(process.pid);
      expect(await spool.lock()).toBe(true);
      // Another live process (our parent) cannot take it.
      expect(await spool.lock(process.ppid)).toBe(false);
      await spool.unlock(process.ppid);
      expect(spool.holder()).toBe(process.pid);
      await spool.unlock();
      expect(spool.holder()).toBeUndefined();
      expect(await spool.lock(process.ppid)).toBe(true);
    });

    it('is taken over from a process that died (kill -9 leaves the file behind)', async () => {
      const dead = await deadPid();
      await fs.writeFile(path.join(spool.dir, 'pusher.lock'), `${dead}\n12345\n`);
      expect(spool.holder()).toBeUndefined();
      expect(await spool.lock()).toBe(true);
      expect(spool.holder()).toBe(process.pid);
    });

    it('is taken over when its pid now belongs to another process (pid reuse)', async () => {
      // A live pid with another start time: the process that wrote the lock is gone.
      await fs.writeFile(path.join(spool.dir, 'pusher.lock'), `${process.ppid}\n1\n`);
      expect(spool.holder()).toBeUndefined();
      expect(await spool.lock()).toBe(true);
    });

    it('reads process start times from /proc', () => {
      expect(processStartTime(process.pid)).toMatch(/^\d+$/);
      expect(processStartTime(2 ** 22 + 12345)).toBeUndefined();
    });
  });
});
