import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isStrataError } from '../errors/index.js';
import { FileSyncer, SYNC_EVERY } from './FileSyncer.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-syncer-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** An open file whose sync/datasync/close calls are recorded; `hold` keeps its sync from finishing. */
async function watched(name: string, events: string[], hold?: Promise<void>) {
  const handle = await fsp.open(path.join(dir, name), 'w');
  const { sync, datasync, close } = {
    sync: handle.sync.bind(handle),
    datasync: handle.datasync.bind(handle),
    close: handle.close.bind(handle),
  };
  handle.sync = async () => {
    events.push(`sync ${name}`);
    await hold;
    await sync();
    events.push(`synced ${name}`);
  };
  handle.datasync = async () => {
    events.push(`datasync ${name}`);
    await hold;
    await datasync();
    events.push(`datasynced ${name}`);
  };
  handle.close = async () => {
    events.push(`close ${name}`);
    await close();
  };
  return handle;
}

describe('FileSyncer', () => {
  it('fsyncs and then closes every file handed over, a few at a time, by the time drain() returns', async () => {
    const events: string[] = [];
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const syncer = new FileSyncer(2);
    for (let i = 0; i < 5; i++) await syncer.syncAndClose(await watched(`f${i}`, events, hold), `f${i}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Two syncs running (the concurrency), the rest waiting; nothing closed before its sync.
    expect(events).toEqual(['sync f0', 'sync f1']);
    release();
    await syncer.drain();
    expect(syncer.synced).toBe(5);
    for (let i = 0; i < 5; i++) {
      expect(events.indexOf(`synced f${i}`)).toBeGreaterThanOrEqual(0);
      expect(events.indexOf(`close f${i}`)).toBeGreaterThan(events.indexOf(`synced f${i}`));
    }
  });

  it('makes the hand-over wait once maxPending files wait for their sync (bounded open descriptors)', async () => {
    const events: string[] = [];
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const syncer = new FileSyncer(1, 2);
    // f0 is being synced; f1 and f2 fill the queue; f3's hand-over waits.
    for (let i = 0; i < 3; i++) await syncer.syncAndClose(await watched(`p${i}`, events, hold), `p${i}`);
    let handedOver = false;
    const fourth = syncer.syncAndClose(await watched('p3', events, hold), 'p3').then(() => (handedOver = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(handedOver).toBe(false);
    release();
    await fourth;
    await syncer.drain();
    expect(syncer.synced).toBe(4);
  });

  it('starts writeback of a large file every SYNC_EVERY bytes, one at a time, and its final fsync waits for it', async () => {
    const events: string[] = [];
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const syncer = new FileSyncer();
    const handle = await watched('big', events, hold);
    syncer.progress(handle, SYNC_EVERY - 1, 'big');
    expect(events).toEqual([]);
    syncer.progress(handle, SYNC_EVERY, 'big');
    // Still running: no second one.
    syncer.progress(handle, 3 * SYNC_EVERY, 'big');
    expect(events).toEqual(['datasync big']);
    await syncer.syncAndClose(handle, 'big');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(events).toEqual(['datasync big']);
    release();
    await syncer.drain();
    expect(events).toEqual(['datasync big', 'datasynced big', 'sync big', 'synced big', 'close big']);
  });

  it('syncs directories and files by path', async () => {
    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub);
    fs.writeFileSync(path.join(sub, 'x'), 'x');
    const syncer = new FileSyncer();
    await syncer.syncPath(sub, 'sub');
    await syncer.syncPath(path.join(sub, 'x'), 'sub/x');
    await syncer.drain();
    expect(syncer.synced).toBe(2);
  });

  it('fails drain() with the first file that could not be made durable, still closing every handle', async () => {
    const events: string[] = [];
    const syncer = new FileSyncer(1);
    const bad = await watched('bad', events);
    bad.sync = () => Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    const good = await watched('good', events);
    await syncer.syncAndClose(bad, 'base/1/bad');
    await syncer.syncAndClose(good, 'base/1/good');
    await syncer.syncPath(path.join(dir, 'missing'), 'base/1/missing');
    const err: unknown = await syncer.drain().catch((e: unknown) => e);
    expect(isStrataError(err)).toBe(true);
    expect((err as Error).message).toBe('could not make base/1/bad durable: EIO: i/o error, fsync');
    expect(events).toContain('close bad');
    expect(events).toContain('close good');
  });
});
