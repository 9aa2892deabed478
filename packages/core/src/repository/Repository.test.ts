import { Readable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { zstdPlugin, nonePlugin } from '../compression/zstd.js';
import type { Compressor } from '../plugins/contract.js';
import { chaosBackend } from '../testing/chaos.js';
import { expectStrataError } from '../testing/assertions.js';
import { MemoryBackend } from '../testing/memoryBackend.js';
import { Repository } from './Repository.js';
import { StrataError } from '../errors/index.js';

const FAST_RETRY = { attempts: 4, baseDelayMs: 1 };
const KEY = 'main/backup/20261122-013000F/manifest';

async function compressors(...names: ('zstd' | 'none')[]): Promise<Map<string, Compressor>> {
  const map = new Map<string, Compressor>();
  for (const n of names)
    map.set(n, await (n === 'zstd' ? zstdPlugin.create({ level: 3 }, { configDir: '/' }) : nonePlugin.create({}, { configDir: '/' })));
  return map;
}

describe('Repository sealed objects', () => {
  let memory: MemoryBackend;
  let repo: Repository;
  const value = { format: 1, label: '20261122-013000F', files: [{ path: 'base/1/1259', size: 8192 }], note: 'ünïcode ✓' };

  beforeEach(async () => {
    memory = new MemoryBackend();
    repo = new Repository('local', memory, await compressors('zstd'), undefined, FAST_RETRY);
  });

  it('round-trips a value through putSealed and readSealed', async () => {
    const size = await repo.putSealed(KEY, 'manifest', value, 'zstd');
    expect(size).toBe(memory.objects.get(KEY)!.data.length);
    expect(memory.objects.get(KEY)!.data.toString('latin1')).toMatch(/^STRATA manifest 1 zstd [0-9a-f]{64}\n/);
    expect(await repo.readSealed(KEY, 'manifest')).toEqual(value);
  });

  it('refuses an object of another kind', async () => {
    await repo.putSealed(KEY, 'cluster', value, 'zstd');
    const err = await expectStrataError(() => repo.readSealed(KEY, 'manifest'), 'Integrity');
    expect(err.message).toContain(KEY);
  });

  it('detects any single damaged byte, naming the key', async () => {
    await repo.putSealed(KEY, 'manifest', { format: 1, cluster: 'main', systemIdentifier: '7301234567890123456' }, 'zstd');
    const original = memory.objects.get(KEY)!.data;
    expect(original.length).toBeGreaterThan(100);
    for (const mask of [0x01, 0x80, 0xff]) {
      for (let i = 0; i < original.length; i++) {
        const damaged = Buffer.from(original);
        damaged[i]! ^= mask;
        memory.objects.get(KEY)!.data = damaged;
        const err = await expectStrataError(() => repo.readSealed(KEY, 'manifest'), 'Integrity').catch((e: unknown) => {
          throw new Error(`byte ${i} ^ 0x${mask.toString(16)}: ${String(e)}`);
        });
        expect(err.message, `byte ${i}`).toContain(`"${KEY}"`);
        expect(err.context).toMatchObject({ key: KEY, repo: 'local' });
      }
    }
  });

  it('detects a truncated object and one without a header', async () => {
    await repo.putSealed(KEY, 'manifest', value, 'zstd');
    const original = memory.objects.get(KEY)!.data;
    for (const data of [
      original.subarray(0, original.length - 1),
      original.subarray(0, 80),
      Buffer.alloc(0),
      Buffer.from('{"format":1}'),
    ]) {
      memory.objects.get(KEY)!.data = data;
      await expectStrataError(() => repo.readSealed(KEY, 'manifest'), 'Integrity');
    }
  });

  it('says which plugin is missing when an object was compressed with one that is not loaded', async () => {
    await repo.putSealed(KEY, 'manifest', value, 'zstd');
    const withoutZstd = new Repository('local', memory, await compressors('none'), undefined, FAST_RETRY);
    const err = await expectStrataError(() => withoutZstd.readSealed(KEY, 'manifest'), 'ConfigInvalid');
    expect(err.message).toContain(KEY);
    expect(err.hint).toMatch(/"zstd" compression plugin/);
  });

  it('rejects a missing object with NotFound naming the key', async () => {
    const err = await expectStrataError(() => repo.readSealed(KEY, 'manifest'), 'NotFound');
    expect(err.context).toMatchObject({ key: KEY, repo: 'local' });
  });
});

describe('Repository retries', () => {
  it('retries a Buffer put after a retryable failure', async () => {
    const memory = new MemoryBackend();
    const chaos = chaosBackend(memory, { failOnCall: 1, operations: ['put'] });
    const repo = new Repository('flaky', chaos, await compressors('zstd'), undefined, FAST_RETRY);
    await repo.put('k/object', Buffer.from('payload'));
    expect(chaos.calls.put).toBe(2);
    expect(memory.objects.get('k/object')!.data.toString()).toBe('payload');
  });

  it('retries reads after a retryable failure', async () => {
    const memory = new MemoryBackend();
    await memory.put('k/object', Buffer.from('payload'));
    const chaos = chaosBackend(memory, { failOnCall: 1, code: 'RateLimited', operations: ['get'] });
    const repo = new Repository('flaky', chaos, await compressors('zstd'), undefined, FAST_RETRY);
    expect((await repo.getBuffer('k/object')).toString()).toBe('payload');
    expect(chaos.calls.get).toBe(2);
  });

  it('does not retry a non-retryable error', async () => {
    const memory = new MemoryBackend();
    const chaos = chaosBackend(memory, { failOnCall: 1, code: 'PermissionDenied', retryable: false });
    const repo = new Repository('locked', chaos, await compressors('zstd'), undefined, FAST_RETRY);
    const err = await expectStrataError(() => repo.put('k/object', Buffer.from('payload')), 'PermissionDenied');
    expect(err.context).toMatchObject({ key: 'k/object', repo: 'locked' });
    // The plugin, the operation and the key, in the message a user reads.
    expect(err.message).toMatch(/^put "k\/object" in repository "locked" \(chaos\(memory[^)]*\)\) failed: injected failure/);
    expect(chaos.calls.put).toBe(1);
    expect(memory.objects.has('k/object')).toBe(false);
  });

  it('rides out intermittent faults: every third call failing', async () => {
    const memory = new MemoryBackend();
    const chaos = chaosBackend(memory, { failEvery: 3 });
    const repo = new Repository('flaky', chaos, await compressors('zstd'), undefined, FAST_RETRY);
    for (let i = 0; i < 10; i++) await repo.put(`k/${i}`, Buffer.from(`v${i}`));
    for (let i = 0; i < 10; i++) expect((await repo.getBuffer(`k/${i}`)).toString()).toBe(`v${i}`);
    expect(chaos.calls.put + chaos.calls.get).toBeGreaterThan(20);
  });

  it('names the repository and the attempts when retries run out', async () => {
    const memory = new MemoryBackend();
    const chaos = chaosBackend(memory, { failEvery: 1, operations: ['get'] });
    const repo = new Repository('down', chaos, await compressors('zstd'), undefined, FAST_RETRY);
    const err = await expectStrataError(() => repo.getBuffer('k/gone'), 'Unavailable');
    expect(err.message).toMatch(/^get "k\/gone" in repository "down" .* failed \(after \d+ attempts\)/);
  });

  it('does not retry a stream body, which cannot be read twice', async () => {
    const memory = new MemoryBackend();
    const chaos = chaosBackend(memory, { failOnCall: 1, operations: ['put'] });
    const repo = new Repository('flaky', chaos, await compressors('zstd'), undefined, FAST_RETRY);
    await expectStrataError(() => repo.put('k/object', Readable.from([Buffer.from('payload')])), 'Unavailable');
    expect(chaos.calls.put).toBe(1);
  });

  it('gives up after the configured number of attempts', async () => {
    class DownBackend extends MemoryBackend {
      calls = 0;
      override async head(): Promise<undefined> {
        this.calls++;
        throw new Error('connection reset');
      }
    }
    const down = new DownBackend();
    const repo = new Repository('down', down, await compressors('zstd'), undefined, { attempts: 3, baseDelayMs: 1 });
    // A plain error from a backend is taken as a transient failure.
    const err = await expectStrataError(() => repo.head('k/object'), 'Unavailable');
    expect(err.message).toContain('connection reset');
    expect(down.calls).toBe(3);
  });
});

describe('Repository compressors', () => {
  it('finds a compressor by name and by file extension, and names a missing one', async () => {
    const repo = new Repository('r', new MemoryBackend(), await compressors('zstd', 'none'));
    expect(repo.compressorByExtension('zst')).toBe(repo.compressor('zstd'));
    expect(repo.compressorByExtension('raw')).toBe(repo.compressor('none'));
    const err = await expectStrataError(async () => repo.compressor('lz4'), 'ConfigInvalid');
    expect(err.hint).toMatch(/"lz4"/);
  });
});

describe('Repository tags', () => {
  it('tags every object with what it is and which copy holds it', async () => {
    const memory = new MemoryBackend();
    const repo = new Repository('offsite-s3', memory, await compressors('zstd'), undefined, FAST_RETRY, {
      media: 'object',
      site: 'offsite',
    });
    const copy = { 'strata-repo': 'offsite-s3', 'strata-media': 'object', 'strata-site': 'offsite' };
    await repo.put('main/backup/20261122-031500F/pack/000001', Buffer.from('p'));
    await repo.putSealed('main/backup/20261122-031500F/manifest', 'manifest', { a: 1 }, 'zstd');
    await repo.put('main/wal/0000000100000000/000000010000000000000003-ab.zst', Buffer.from('w'));
    await repo.put('main/wal/00000002.history-ab.zst', Buffer.from('h'));
    await repo.putSealed('main/cluster.info', 'cluster', {}, 'zstd');
    expect((await memory.head('main/backup/20261122-031500F/pack/000001'))?.tags).toEqual({
      ...copy,
      'strata-cluster': 'main',
      'strata-kind': 'pack',
      'strata-backup': '20261122-031500F',
    });
    expect((await memory.head('main/backup/20261122-031500F/manifest'))?.tags).toMatchObject({ 'strata-kind': 'manifest' });
    expect((await memory.head('main/wal/0000000100000000/000000010000000000000003-ab.zst'))?.tags).toEqual({
      ...copy,
      'strata-cluster': 'main',
      'strata-kind': 'wal',
    });
    expect((await memory.head('main/wal/00000002.history-ab.zst'))?.tags).toMatchObject({ 'strata-kind': 'history' });
    expect((await memory.head('main/cluster.info'))?.tags).toMatchObject({ 'strata-kind': 'cluster-info', 'strata-cluster': 'main' });
  });

  it('sends no tags to a backend that cannot store them', async () => {
    const memory = new MemoryBackend();
    Object.assign(memory.capabilities, { tags: false });
    const repo = new Repository('fs', memory, await compressors('zstd'), undefined, FAST_RETRY, { media: 'disk' });
    await repo.put('main/cluster.info', Buffer.from('x'));
    expect((await memory.head('main/cluster.info'))?.tags).toBeUndefined();
  });
});

describe('Repository list retries', () => {
  it('retries a failed listing and resumes after the last key it yielded', async () => {
    const memory = new MemoryBackend();
    for (let i = 0; i < 5; i++) await memory.put(`k/${i}`, Buffer.from('x'));
    let calls = 0;
    const flaky = Object.create(memory) as MemoryBackend;
    flaky.list = async function* (prefix: string) {
      calls++;
      let n = 0;
      for await (const o of memory.list(prefix)) {
        if (calls === 1 && n++ === 3) throw new StrataError('Unavailable', 'connection reset');
        yield o;
      }
    };
    const repo = new Repository('flaky', flaky, await compressors('zstd'), undefined, FAST_RETRY);
    expect((await repo.listAll('k/')).map((o) => o.key)).toEqual(['k/0', 'k/1', 'k/2', 'k/3', 'k/4']);
    expect(calls).toBe(2);
  });
});
