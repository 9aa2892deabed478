import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { zstdPlugin } from '../compression/zstd.js';
import type { Compressor, StorageBackend } from '../plugins/contract.js';
import { chaosBackend } from '../testing/chaos.js';
import { expectStrataError } from '../testing/assertions.js';
import { MemoryBackend } from '../testing/memoryBackend.js';
import { packHash } from '../blocks/PackWriter.js';
import type { Manifest } from '../manifest/types.js';
import { replicate } from '../replication/replicate.js';
import { missingIn, takeInventory, wantedOf } from '../replication/inventory.js';
import { keys } from './keys.js';
import { MissQueue } from './MissQueue.js';
import { Repository, TAG } from './Repository.js';
import { ReplicatedRepository } from './ReplicatedRepository.js';

const compressors = new Map<string, Compressor>([['zstd', zstdPlugin.create({ level: 3 }, { configDir: '.' }) as Compressor]]);
const NO_RETRY = { attempts: 1, baseDelayMs: 0 };

function copy(name: string, backend: StorageBackend = new MemoryBackend(), site = 'onsite'): Repository {
  return new Repository(name, backend, compressors, undefined, NO_RETRY, { media: 'disk', site });
}

/** A backend whose every call fails as an unreachable server's would. */
function down(): StorageBackend {
  return chaosBackend(new MemoryBackend(), { failEvery: 1, code: 'Unavailable', retryable: false });
}

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(tmpdir(), 'strata-replicated-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('ReplicatedRepository writes', () => {
  it('writes every object to every copy, each with its own copy tags', async () => {
    const [a, b] = [new MemoryBackend(), new MemoryBackend()];
    const set = new ReplicatedRepository([copy('a', a), copy('b', b, 'offsite')], { minCopies: 2 });
    await set.put('main/wal/0000000100000000/x-' + '0'.repeat(64) + '.zst', Buffer.from('wal'));
    for (const [backend, name, site] of [
      [a, 'a', 'onsite'],
      [b, 'b', 'offsite'],
    ] as const) {
      const [obj] = [...backend.objects.values()];
      expect(obj!.data.toString()).toBe('wal');
      expect(obj!.tags).toMatchObject({ [TAG.repo]: name, [TAG.site]: site, [TAG.kind]: 'wal' });
    }
  });

  it('with minCopies below the count, a down copy is skipped, recorded durably, and not retried per object', async () => {
    const broken = chaosBackend(new MemoryBackend(), { failEvery: 1, code: 'Unavailable', retryable: false });
    const queue = new MissQueue(dir);
    const set = new ReplicatedRepository([copy('a'), copy('b'), copy('c', broken)], { minCopies: 2, queue });
    await set.put('main/backup/20261122-010000F/pack/000000', Buffer.from('p0'));
    await set.put('main/backup/20261122-010000F/pack/000001', Buffer.from('p1'));
    expect(broken.calls.put).toBe(1);
    expect(set.outages().map((o) => o.repo)).toEqual(['c']);
    const pending = await queue.pending('c');
    expect(pending.map((m) => m.key)).toEqual(['main/backup/20261122-010000F/pack/000000', 'main/backup/20261122-010000F/pack/000001']);
    expect(await queue.pending('a')).toEqual([]);
  });

  it('a copy another process found down is skipped by the next processes for a while, and probed when needed', async () => {
    const queue = new MissQueue(dir);
    const first = new ReplicatedRepository([copy('a'), copy('b', down())], { minCopies: 1, queue });
    await first.put('main/wal/k1', Buffer.from('1'));
    expect((await queue.downMark('b'))?.reason).toMatch(/injected failure/);

    // The next archive-push: b is skipped without a call, and the miss is recorded.
    const b2 = chaosBackend(new MemoryBackend(), { failEvery: 1, code: 'Unavailable', retryable: false });
    const second = new ReplicatedRepository([copy('a'), copy('b', b2)], { minCopies: 1, queue });
    await second.put('main/wal/k2', Buffer.from('2'));
    expect(b2.calls.put).toBe(0);
    expect((await queue.pending('b')).map((m) => m.key)).toEqual(['main/wal/k1', 'main/wal/k2']);
    expect(second.outages()[0]!.error.message).toMatch(/was found down \d+ s ago/);

    // minCopies needs b: it is probed at once, and a success clears the mark.
    const back = new MemoryBackend();
    const third = new ReplicatedRepository([copy('a'), copy('b', back)], { minCopies: 2, queue });
    await third.put('main/wal/k3', Buffer.from('3'));
    expect(back.objects.has('main/wal/k3')).toBe(true);
    expect(await queue.downMark('b')).toBeUndefined();

    // After the probe window, a marked copy is tried again even when it is not needed.
    await queue.markDown('b', 'earlier outage');
    const later = new MemoryBackend();
    const fourth = new ReplicatedRepository([copy('a'), copy('b', later)], { minCopies: 1, queue, probeAfterMs: 0 });
    await fourth.put('main/wal/k4', Buffer.from('4'));
    expect(later.objects.has('main/wal/k4')).toBe(true);
  });

  it('fails when fewer than minCopies hold the object, naming the copy that failed', async () => {
    const set = new ReplicatedRepository([copy('a'), copy('b', down())], { minCopies: 2, queue: new MissQueue(dir) });
    const err = await expectStrataError(() => set.put('main/cluster.info', Buffer.from('x')), 'Unavailable');
    expect(err.message).toMatch(/reached 1 of 2 repositories, fewer than minCopies 2: b: /);
    // Nothing is queued for a write that failed: the caller retries it whole.
    expect(await new MissQueue(dir).pending('b')).toEqual([]);
  });

  it('a conditional create that finds the object in one copy still writes the others, then reports AlreadyExists', async () => {
    const [a, b] = [new MemoryBackend(), new MemoryBackend()];
    await copy('a', a).put('main/cluster.info', Buffer.from('old'));
    const set = new ReplicatedRepository([copy('a', a), copy('b', b)], { minCopies: 2 });
    await expectStrataError(() => set.put('main/cluster.info', Buffer.from('new'), { ifNoneMatch: true }), 'AlreadyExists');
    expect(a.objects.get('main/cluster.info')!.data.toString()).toBe('old');
    expect(b.objects.get('main/cluster.info')!.data.toString()).toBe('new');
  });

  it('refuses minCopies outside 1..copies', () => {
    expect(() => new ReplicatedRepository([copy('a')], { minCopies: 2 })).toThrow(/minCopies is 2, but 1 repositories/);
  });
});

describe('ReplicatedRepository reads', () => {
  it('falls back to the next copy when one lacks an object or holds a damaged one, and records why', async () => {
    const [a, b] = [new MemoryBackend(), new MemoryBackend()];
    const set = new ReplicatedRepository([copy('a', a), copy('b', b)], { minCopies: 2 });
    await set.putSealed('main/backup/20261122-010000F/manifest', 'manifest', { hello: 1 }, 'zstd');
    const stored = a.objects.get('main/backup/20261122-010000F/manifest')!;
    stored.data[stored.data.length - 1]! ^= 0xff;
    expect(await set.readSealed('main/backup/20261122-010000F/manifest', 'manifest')).toEqual({ hello: 1 });
    a.objects.delete('main/backup/20261122-010000F/manifest');
    expect(await set.readSealed('main/backup/20261122-010000F/manifest', 'manifest')).toEqual({ hello: 1 });
    expect(set.fallbacks.map((f) => [f.from, f.to])).toEqual([
      ['a', 'b'],
      ['a', 'b'],
    ]);
    expect(set.fallbacks[0]!.reason).toMatch(/corrupt/);
    expect(set.fallbacks[1]!.reason).toMatch(/not|NotFound|missing/i);
  });

  it('reports an object missing everywhere as NotFound, and damage everywhere as Integrity naming each copy', async () => {
    const [a, b] = [new MemoryBackend(), new MemoryBackend()];
    const set = new ReplicatedRepository([copy('a', a), copy('b', b)], { minCopies: 2 });
    await expectStrataError(() => set.getBuffer('main/nothing'), 'NotFound');
    expect(await set.head('main/nothing')).toBeUndefined();
    await set.putSealed('main/cluster.info', 'cluster', { x: 1 }, 'zstd');
    for (const be of [a, b]) be.objects.get('main/cluster.info')!.data[30]! ^= 1;
    const err = await expectStrataError(() => set.readSealed('main/cluster.info', 'cluster'), 'Integrity');
    expect(err.message).toMatch(/a: .*; b: /);
  });

  it('lists the union of the copies in key order and survives a copy that cannot be listed', async () => {
    const [a, b] = [new MemoryBackend(), new MemoryBackend()];
    await copy('a', a).put('main/wal/k1', Buffer.from('1'));
    await copy('b', b).put('main/wal/k0', Buffer.from('0'));
    await copy('b', b).put('main/wal/k1', Buffer.from('1'));
    const set = new ReplicatedRepository([copy('a', a), copy('b', b), copy('c', down())], { minCopies: 1 });
    expect((await set.listAll('main/')).map((o) => o.key)).toEqual(['main/wal/k0', 'main/wal/k1']);
    const none = new ReplicatedRepository([copy('x', down()), copy('y', down())], { minCopies: 1 });
    await expectStrataError(() => none.listAll('main/'), 'Unavailable');
  });
});

describe('replicate', () => {
  const LABEL = '20261122-010000F';
  const walKey = (data: Buffer) =>
    keys.walObject('main', '000000010000000000000003', createHash('sha256').update(data).digest('hex'), 'zst');

  /** A committed backup (two packs, a manifest recording their checksums) and one WAL file. */
  async function seed(repo: Repository): Promise<void> {
    const packs = [Buffer.from('pack zero'), Buffer.from('pack one')];
    for (const [n, p] of packs.entries()) await repo.put(keys.pack('main', LABEL, n), p);
    await repo.putSealed(keys.clusterInfo('main'), 'cluster', { cluster: 'main' }, 'zstd');
    const manifest = { label: LABEL, packs: 2, packHashes: packs.map(packHash) } as unknown as Manifest;
    await repo.putSealed(keys.manifest('main', LABEL), 'manifest', manifest, 'zstd');
    const wal = Buffer.from('a WAL file');
    await repo.put(walKey(wal), await repo.compressor('zstd').compress(wal));
  }

  it('copies what the target misses, verified, manifest last; a second run copies nothing and the queue is cleared', async () => {
    const [a, b, c] = [new MemoryBackend(), new MemoryBackend(), new MemoryBackend()];
    await seed(copy('a', a));
    // b holds part of it (a write it missed midway), and a damaged pack that must be replaced from a.
    await seed(copy('b', b));
    b.objects.delete(keys.manifest('main', LABEL));
    b.objects.get(keys.pack('main', LABEL, 1))!.data[0]! ^= 1;
    const queue = new MissQueue(dir);
    await queue.record({ repo: 'c', key: keys.pack('main', LABEL, 0), at: new Date().toISOString(), reason: 'down' });

    const sources = [copy('b', b), copy('a', a)];
    const result = await replicate({ cluster: 'main', sources, target: copy('c', c), queue });
    expect(result).toMatchObject({ level: true, backups: [LABEL], wal: 1, failed: [] });
    expect(result.copied).toBe(5);
    expect(c.objects.get(keys.pack('main', LABEL, 1))!.data.toString()).toBe('pack one');
    const inv = await takeInventory([copy('a', a), copy('c', c)], 'main');
    expect(missingIn(inv[1]!, wantedOf(inv)).objects).toEqual([]);
    expect(await queue.pending('c')).toEqual([]);

    const again = await replicate({ cluster: 'main', sources, target: copy('c', c), queue });
    expect(again).toMatchObject({ copied: 0, level: true });
  });

  it('keeps a backup invisible on the target when one of its objects is damaged in every source', async () => {
    const [a, c] = [new MemoryBackend(), new MemoryBackend()];
    await seed(copy('a', a));
    a.objects.get(keys.pack('main', LABEL, 0))!.data[0]! ^= 1;
    const result = await replicate({ cluster: 'main', sources: [copy('a', a)], target: copy('c', c) });
    expect(result.level).toBe(false);
    expect(result.failed.map((f) => f.key)).toEqual([keys.pack('main', LABEL, 0)]);
    expect(result.failed[0]!.reason).toMatch(/does not match the checksum in its manifest/);
    expect(c.objects.has(keys.manifest('main', LABEL))).toBe(false);
    expect(c.objects.has(keys.pack('main', LABEL, 1))).toBe(true);
  });

  it('rejects a WAL object whose bytes do not match the checksum in its name', async () => {
    const [a, c] = [new MemoryBackend(), new MemoryBackend()];
    const repo = copy('a', a);
    await repo.put(walKey(Buffer.from('original')), await repo.compressor('zstd').compress(Buffer.from('tampered')));
    const result = await replicate({ cluster: 'main', sources: [repo], target: copy('c', c) });
    expect(result.failed[0]!.reason).toMatch(/does not match the checksum in its name/);
    expect(c.objects.size).toBe(0);
  });
});
