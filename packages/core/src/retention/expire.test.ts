import { beforeEach, describe, expect, it } from 'vitest';
import { nonePlugin } from '../compression/zstd.js';
import { listBackupLabels, listIncompleteLabels } from '../manifest/catalog.js';
import { MANIFEST_FORMAT, type BackupType, type Manifest } from '../manifest/types.js';
import { keys } from '../repository/keys.js';
import { Repository } from '../repository/Repository.js';
import { expectStrataError } from '../testing/assertions.js';
import { MemoryBackend } from '../testing/memoryBackend.js';
import { DELETE_BATCH, runExpire } from './expire.js';

const CLUSTER = 'main';
const NOW = new Date('2026-03-01T12:00:00.000Z');

/** Records every delete call, in order. */
class RecordingBackend extends MemoryBackend {
  readonly deletes: string[][] = [];
  override async delete(keyList: string[]): Promise<void> {
    this.deletes.push([...keyList]);
    return super.delete(keyList);
  }
}

function manifest(label: string, type: BackupType, parent: string | null, references: string[], startWal: string, at: string): Manifest {
  return {
    format: MANIFEST_FORMAT,
    label,
    type,
    parent,
    references,
    cluster: CLUSTER,
    systemIdentifier: '7301234567890123456',
    pgVersionNum: 150004,
    timeline: 1,
    walSegmentSize: 16 * 1024 * 1024,
    startLsn: '0/0',
    stopLsn: '0/0',
    startWal,
    stopWal: startWal,
    startTime: at,
    stopTime: at,
    backupLabel: '',
    tablespaceMap: null,
    databases: [],
    tablespaces: [],
    options: { compression: 'none', pageSize: 8192, superBlockSize: 1024 * 1024, pageHash: 'xxh3-64', fileHash: 'sha256' },
    packs: 0,
    blockMaps: [],
    stats: { files: 0, bytes: 0, repoBytes: 0 },
    files: [],
  };
}

describe('runExpire', () => {
  let backend: RecordingBackend;
  let repo: Repository;

  const F1 = '20260220-010000F';
  const F1I = '20260220-010000F_20260221-010000I';
  const F2 = '20260225-010000F';
  const F2I = '20260225-010000F_20260226-010000I';
  const INTERRUPTED = '20260224-010000F';

  const put = (key: string, size: number) => backend.put(key, Buffer.alloc(size, 7));
  const wal = (name: string) => keys.walObject(CLUSTER, name, 'b'.repeat(64), 'raw');

  async function addBackup(label: string, type: BackupType, parent: string | null, refs: string[], startWal: string, packs: number) {
    for (let n = 0; n < packs; n++) await put(keys.pack(CLUSTER, label, n), 10);
    await put(keys.blockMap(CLUSTER, label, 0), 5);
    const at = `${label.slice(-16, -12)}-${label.slice(-12, -10)}-${label.slice(-10, -8)}T01:00:00.000Z`;
    await repo.putSealed(keys.manifest(CLUSTER, label), 'manifest', manifest(label, type, parent, refs, startWal, at), 'none');
  }

  beforeEach(async () => {
    backend = new RecordingBackend();
    repo = new Repository('local', backend, new Map([['none', await nonePlugin.create({}, { configDir: '/' })]]), undefined, {
      attempts: 1,
      baseDelayMs: 1,
    });
    await put(keys.clusterInfo(CLUSTER), 100);
    // F1's chain is old; one of its packs count is past a delete batch.
    await addBackup(F1, 'full', null, [], '000000010000000000000003', DELETE_BATCH + 5);
    await addBackup(F1I, 'incr', F1, [F1], '000000010000000000000005', 2);
    await addBackup(F2, 'full', null, [], '000000010000000000000010', 3);
    await addBackup(F2I, 'incr', F2, [F2], '000000010000000000000012', 1);
    await put(keys.pack(CLUSTER, INTERRUPTED, 0), 10);
    for (const name of [
      '000000010000000000000002',
      '000000010000000000000003',
      '000000010000000000000003.00000028.backup',
      '00000001000000000000000F',
      '000000010000000000000010',
      '000000010000000000000011',
      '00000002.history',
    ])
      await put(wal(name), 20);
    backend.deletes.length = 0;
  });

  it('deletes each expired manifest before any pack or block map, in batches of at most 1000 keys', async () => {
    const sizes = new Map([...backend.objects].map(([k, v]) => [k, v.data.length]));
    const result = await runExpire({ repo, cluster: CLUSTER, policy: { full: 1 }, now: NOW });
    expect(result.dryRun).toBe(false);
    expect(result.expired.map((b) => [b.label, b.objects])).toEqual([
      [F1, DELETE_BATCH + 5 + 2],
      [F1I, 2 + 2],
    ]);
    expect(result.interrupted.map((b) => b.label)).toEqual([INTERRUPTED]);
    expect(result.retained.map((b) => b.label)).toEqual([F2, F2I]);

    const calls = backend.deletes;
    const callOf = (key: string) => calls.findIndex((c) => c.includes(key));
    // Newest first: the incremental's manifest goes before the full it depends on.
    expect(calls.slice(0, 2)).toEqual([[keys.manifest(CLUSTER, F1I)], [keys.manifest(CLUSTER, F1)]]);
    for (const label of [F1, F1I]) {
      for (const key of [keys.pack(CLUSTER, label, 0), keys.pack(CLUSTER, label, 1), keys.blockMap(CLUSTER, label, 0)]) {
        expect(callOf(key)).toBeGreaterThan(callOf(keys.manifest(CLUSTER, label)));
        expect(callOf(key)).toBeGreaterThan(1);
      }
    }
    expect(callOf(keys.pack(CLUSTER, F1, DELETE_BATCH + 4))).toBeGreaterThan(1);
    expect(Math.max(...calls.map((c) => c.length))).toBeLessThanOrEqual(DELETE_BATCH);
    expect(calls.some((c) => c.length === DELETE_BATCH)).toBe(true);

    // What is left: the retained chain, WAL from F2's start, history files, cluster.info.
    const left = [...backend.objects.keys()].sort();
    expect(left.filter((k) => k.includes('/backup/') && !k.includes(F2))).toEqual([]);
    expect(await listBackupLabels(repo, CLUSTER)).toEqual([F2, F2I]);
    expect(await listIncompleteLabels(repo, CLUSTER)).toEqual([]);
    expect(left.filter((k) => k.includes('/wal/'))).toEqual(
      [wal('00000002.history'), wal('000000010000000000000010'), wal('000000010000000000000011')].sort(),
    );
    expect(backend.objects.has(keys.clusterInfo(CLUSTER))).toBe(true);
    expect(result.wal).toEqual([
      {
        timeline: 1,
        first: '000000010000000000000002',
        last: '00000001000000000000000F',
        count: 4,
        bytes: 80,
        keepFrom: '000000010000000000000010',
      },
    ]);
    const deleted = calls.flat();
    expect(new Set(deleted).size).toBe(deleted.length);
    expect(result.objectsDeleted).toBe(deleted.length);
    expect(result.bytesFreed).toBe(deleted.reduce((a, k) => a + sizes.get(k)!, 0));
    const under = (label: string) => [...sizes].filter(([k]) => k.startsWith(keys.backupDir(CLUSTER, label)));
    for (const b of [...result.expired, ...result.interrupted]) {
      expect(b.bytes).toBe(under(b.label).reduce((a, [, n]) => a + n, 0));
      expect(b.objects).toBe(under(b.label).length);
    }
  });

  it('with dryRun reports the same plan and deletes nothing', async () => {
    const before = new Map([...backend.objects].map(([k, v]) => [k, v.data.length]));
    const dry = await runExpire({ repo, cluster: CLUSTER, policy: { full: 1 }, now: NOW, dryRun: true });
    expect(backend.deletes).toEqual([]);
    expect(new Map([...backend.objects].map(([k, v]) => [k, v.data.length]))).toEqual(before);
    expect(dry.dryRun).toBe(true);
    expect(dry.expired.map((b) => b.label)).toEqual([F1, F1I]);
    expect(dry.objectsDeleted).toBeGreaterThan(DELETE_BATCH);

    const real = await runExpire({ repo, cluster: CLUSTER, policy: { full: 1 }, now: NOW });
    expect({ ...real, dryRun: true }).toEqual(dry);
    expect(backend.deletes.flat()).toHaveLength(dry.objectsDeleted);
    // Run again: nothing more to do.
    const again = await runExpire({ repo, cluster: CLUSTER, policy: { full: 1 }, now: NOW });
    expect([again.objectsDeleted, again.expired.length, again.wal.length]).toEqual([0, 0, 0]);
  });

  it('keeps every backup and all WAL without a policy, removing only interrupted backups', async () => {
    const result = await runExpire({ repo, cluster: CLUSTER, policy: {}, now: NOW });
    expect(result.configured).toBe(false);
    expect(result.expired).toEqual([]);
    expect(result.wal).toEqual([]);
    expect(result.retained.map((b) => b.label)).toEqual([F1, F1I, F2, F2I]);
    expect(backend.deletes.flat()).toEqual([keys.pack(CLUSTER, INTERRUPTED, 0)]);
  });

  it('removes nothing when a manifest cannot be read', async () => {
    const key = keys.manifest(CLUSTER, F2);
    const data = backend.objects.get(key)!.data;
    data.writeUInt8(data.readUInt8(data.length - 3) ^ 1, data.length - 3);
    const err = await expectStrataError(() => runExpire({ repo, cluster: CLUSTER, policy: { full: 1 }, now: NOW }), 'Integrity');
    expect(err.message).toContain(`manifest of backup ${F2}`);
    expect(backend.deletes).toEqual([]);
  });
});
