import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { zstdPlugin } from '../compression/zstd.js';
import { StrataError } from '../errors/index.js';
import { writeClusterInfo } from '../repository/clusterInfo.js';
import { Repository } from '../repository/Repository.js';
import { MemoryBackend } from '../testing/memoryBackend.js';
import { archivePush, findWalObjects, type ArchivePushResult } from './archive.js';
import { readyFiles, runPusher } from './pusher.js';
import { ArchiveSpool } from './spool.js';

const SEGMENT_SIZE = 1024 * 1024;
const SYSTEM_ID = 7301234567890123456n;

function segment(): Buffer {
  const data = Buffer.alloc(SEGMENT_SIZE);
  data.writeUInt16LE(0xd116, 0);
  data.writeUInt16LE(0x0002, 2); // XLP_LONG_HEADER
  data.writeUInt32LE(1, 4);
  data.writeBigUInt64LE(SYSTEM_ID, 24);
  data.writeUInt32LE(SEGMENT_SIZE, 32);
  data.writeUInt32LE(8192, 36);
  randomBytes(4096).copy(data, 40);
  return data;
}

const seg = (n: number) => `0000000100000000000000${n.toString(16).toUpperCase().padStart(2, '0')}`;

describe('runPusher', () => {
  let tmp: string;
  let walDir: string;
  let spool: ArchiveSpool;
  let memory: MemoryBackend;
  let repo: Repository;

  const ready = async (name: string) => {
    await fs.writeFile(path.join(walDir, name), name.endsWith('.history') ? '1\t0/3000000\tno recovery target specified\n' : segment());
    await fs.writeFile(path.join(walDir, 'archive_status', `${name}.ready`), '');
  };
  const done = async (name: string) =>
    fs.rename(path.join(walDir, 'archive_status', `${name}.ready`), path.join(walDir, 'archive_status', `${name}.done`));
  const push = (walPath: string) => archivePush({ repo, cluster: 'main', walPath, compression: 'zstd' });
  const stored = async (name: string) => (await findWalObjects(repo, 'main', name)).length === 1;

  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(tmpdir(), 'strata-pusher-'));
    walDir = path.join(tmp, 'pg_wal');
    await fs.mkdir(path.join(walDir, 'archive_status'), { recursive: true });
    spool = new ArchiveSpool(path.join(tmp, 'spool'));
    await spool.create();
    memory = new MemoryBackend();
    const compressors = new Map([['zstd', await zstdPlugin.create({ level: 3 }, { configDir: '/' })]]);
    repo = new Repository('local', memory, compressors, undefined, { attempts: 1, baseDelayMs: 1 });
    await writeClusterInfo(
      repo,
      {
        format: 1,
        cluster: 'main',
        systemIdentifier: SYSTEM_ID.toString(),
        pgVersionNum: 150000,
        walSegmentSize: SEGMENT_SIZE,
        createdAt: '2026-11-22T01:00:00.000Z',
      },
      'zstd',
    );
  });

  afterEach(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('orders ready files as PostgreSQL archives them: history files first, then oldest', async () => {
    for (const n of [seg(3), '00000002.history', seg(1), seg(2)]) await ready(n);
    await fs.writeFile(path.join(walDir, 'archive_status', `${seg(9)}.done`), '');
    expect(readyFiles(path.join(walDir, 'archive_status'))).toEqual(['00000002.history', seg(1), seg(2), seg(3)]);
  });

  it('stores every ready file, at most processMax at once, each marker only after its file is stored', async () => {
    for (let i = 1; i <= 7; i++) await ready(seg(i));
    let running = 0;
    let most = 0;
    const result = await runPusher({
      walDir,
      spool,
      processMax: 3,
      idleMs: 200,
      pollMs: 10,
      push: async (walPath) => {
        running++;
        most = Math.max(most, running);
        const name = path.basename(walPath);
        // Not yet stored: no marker may exist, whatever else is going on.
        expect(await spool.take(walPath)).toBeUndefined();
        await new Promise((r) => setTimeout(r, 20));
        try {
          return await push(walPath);
        } finally {
          running--;
          expect(await stored(name)).toBe(true);
        }
      },
    });
    expect(result).toEqual({ pushed: 7, failed: 0 });
    expect(most).toBe(3);
    for (let i = 1; i <= 7; i++) {
      expect(await stored(seg(i))).toBe(true);
      const state = await spool.take(path.join(walDir, seg(i)));
      expect(state?.kind).toBe('stored');
      expect((state as { result: ArchivePushResult }).result.walName).toBe(seg(i));
    }
  });

  it('records a failure, does not retry it until archive-push has reported it, then retries', async () => {
    await ready(seg(1));
    await ready(seg(2));
    let failSeg1 = true;
    let attemptsSeg1 = 0;
    const pusher = runPusher({
      walDir,
      spool,
      processMax: 2,
      idleMs: 1500,
      pollMs: 10,
      push: async (walPath) => {
        if (path.basename(walPath) === seg(1)) {
          attemptsSeg1++;
          if (failSeg1) throw new StrataError('PermissionDenied', 'permission denied writing the repository');
        }
        return push(walPath);
      },
    });
    const walPath = path.join(walDir, seg(1));
    while (!(await spool.markers()).failed.has(seg(1))) await new Promise((r) => setTimeout(r, 10));
    expect(await stored(seg(1))).toBe(false);
    // The error marker holds the pusher back: no hot retry loop.
    await new Promise((r) => setTimeout(r, 100));
    expect(attemptsSeg1).toBe(1);
    // The next segment was not held up by the failure.
    expect((await spool.take(path.join(walDir, seg(2))))?.kind).toBe('stored');

    // archive-push reports the error to PostgreSQL and consumes the marker; the repository is
    // back, so the pusher's retry stores the file.
    failSeg1 = false;
    let state = await spool.take(walPath);
    expect(state?.kind).toBe('error');
    expect((state as { error: StrataError }).error.code).toBe('PermissionDenied');
    state = await spool.take(walPath);
    while (state === undefined) {
      await new Promise((r) => setTimeout(r, 10));
      state = await spool.take(walPath);
    }
    expect(state.kind).toBe('stored');
    expect(attemptsSeg1).toBe(2);
    expect(await stored(seg(1))).toBe(true);
    expect(await pusher).toEqual({ pushed: 2, failed: 1 });
  });

  it('after a crash between storing a file and writing its marker, pushes it again (idempotent) and acknowledges it', async () => {
    await ready(seg(1));
    const walPath = path.join(walDir, seg(1));
    // The previous pusher stored the file and died before its marker: PostgreSQL is not told.
    await push(walPath);
    expect(await spool.take(walPath)).toBeUndefined();

    const result = await runPusher({ walDir, spool, processMax: 2, idleMs: 100, pollMs: 10, push });
    expect(result).toEqual({ pushed: 1, failed: 0 });
    const state = await spool.take(walPath);
    expect(state?.kind).toBe('stored');
    expect((state as { result: ArchivePushResult }).result.alreadyArchived).toBe(true);
    expect((await findWalObjects(repo, 'main', seg(1))).length).toBe(1);
  });

  it('drops markers of files PostgreSQL has marked done, and skips files already stored and waiting', async () => {
    await ready(seg(1));
    await ready(seg(2));
    let pushes = 0;
    const counting = (walPath: string) => {
      pushes++;
      return push(walPath);
    };
    await runPusher({ walDir, spool, processMax: 2, idleMs: 50, pollMs: 10, push: counting });
    expect(pushes).toBe(2);
    // PostgreSQL acknowledged seg 1 only; a new pusher prunes its marker and pushes nothing again.
    await done(seg(1));
    await runPusher({ walDir, spool, processMax: 2, idleMs: 50, pollMs: 10, push: counting });
    expect(pushes).toBe(2);
    const { stored: markers } = await spool.markers();
    expect([...markers]).toEqual([seg(2)]);
  });
});
