import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { zstdPlugin } from '../compression/zstd.js';
import { writeClusterInfo } from '../repository/clusterInfo.js';
import { Repository } from '../repository/Repository.js';
import { expectStrataError } from '../testing/assertions.js';
import { MemoryBackend } from '../testing/memoryBackend.js';
import { archiveGet, archivePush, fetchWal, findWalObjects, storePreparedWal } from './archive.js';
import { WalScratch, prepareWal } from './prepare.js';

const SEGMENT_SIZE = 16 * 1024 * 1024;
const SYSTEM_ID = 7301234567890123456n;
const CLUSTER = 'main';
const SEGMENT = '000000010000000000000001';

/** A WAL segment whose first page carries the long header PostgreSQL writes (XLogLongPageHeaderData). */
function segment(systemIdentifier = SYSTEM_ID, size = SEGMENT_SIZE): Buffer {
  const data = Buffer.alloc(size);
  data.writeUInt16LE(0xd116, 0); // xlp_magic
  data.writeUInt16LE(0x0002, 2); // xlp_info: XLP_LONG_HEADER
  data.writeUInt32LE(1, 4); // xlp_tli
  data.writeBigUInt64LE(BigInt(SEGMENT_SIZE), 8); // xlp_pageaddr of segment 1
  data.writeBigUInt64LE(systemIdentifier, 24); // xlp_sysid
  data.writeUInt32LE(SEGMENT_SIZE, 32); // xlp_seg_size
  data.writeUInt32LE(8192, 36); // xlp_xlog_blcksz
  randomBytes(64 * 1024).copy(data, 40); // some records
  return data;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('WAL archive', () => {
  let tmp: string;
  let memory: MemoryBackend;
  let repo: Repository;

  const writeWal = async (name: string, data: Buffer) => {
    const file = path.join(tmp, 'pg_wal', name);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, data);
    return file;
  };
  const push = (walPath: string) => archivePush({ repo, cluster: CLUSTER, walPath, compression: 'zstd' });
  const walKeys = () => [...memory.objects.keys()].filter((k) => k.startsWith(`${CLUSTER}/wal/`));

  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(tmpdir(), 'strata-wal-'));
    memory = new MemoryBackend();
    const compressors = new Map([['zstd', await zstdPlugin.create({ level: 3 }, { configDir: '/' })]]);
    repo = new Repository('local', memory, compressors, undefined, { attempts: 2, baseDelayMs: 1 });
    const info = {
      format: 1 as const,
      cluster: CLUSTER,
      systemIdentifier: SYSTEM_ID.toString(),
      pgVersionNum: 160004,
      walSegmentSize: SEGMENT_SIZE,
      createdAt: '2026-11-22T01:00:00.000Z',
    };
    expect(await writeClusterInfo(repo, info, 'zstd')).toBe('created');
  });

  afterEach(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  describe('archivePush', () => {
    it('stores a segment under a key carrying its checksum, with tags', async () => {
      const data = segment();
      const result = await push(await writeWal(SEGMENT, data));
      const sha = sha256(data);
      expect(result).toMatchObject({ walName: SEGMENT, sha256: sha, size: SEGMENT_SIZE, alreadyArchived: false });
      expect(result.key).toBe(`${CLUSTER}/wal/0000000100000000/${SEGMENT}-${sha}.zst`);
      expect(walKeys()).toEqual([result.key]);
      expect(result.storedBytes).toBe(memory.objects.get(result.key)!.data.length);
      expect(result.storedBytes).toBeLessThan(SEGMENT_SIZE);
      expect(memory.objects.get(result.key)!.tags).toEqual({ 'strata-cluster': CLUSTER, 'strata-kind': 'wal', 'strata-repo': 'local' });
    });

    it('accepts the same segment again as already archived', async () => {
      const file = await writeWal(SEGMENT, segment());
      const first = await push(file);
      const second = await push(file);
      expect(second).toMatchObject({ key: first.key, sha256: first.sha256, alreadyArchived: true });
      expect(walKeys()).toEqual([first.key]);
    });

    it('refuses different bytes under an archived name and leaves the original untouched', async () => {
      const file = await writeWal(SEGMENT, segment());
      const first = await push(file);
      const stored = Buffer.from(memory.objects.get(first.key)!.data);
      await fs.writeFile(file, segment());
      const err = await expectStrataError(() => push(file), 'AlreadyExists');
      expect(err.message).toContain(SEGMENT);
      expect(err.context.key).toBe(first.key);
      expect(walKeys()).toEqual([first.key]);
      expect(memory.objects.get(first.key)!.data.equals(stored)).toBe(true);
    });

    it('refuses a segment from another system with Precondition', async () => {
      const err = await expectStrataError(() => writeWal(SEGMENT, segment(42n)).then(push), 'Precondition');
      expect(err.message).toContain('42');
      expect(err.message).toContain(SYSTEM_ID.toString());
      expect(walKeys()).toEqual([]);
    });

    it('refuses a segment of the wrong size with Integrity', async () => {
      const err = await expectStrataError(() => writeWal(SEGMENT, segment(SYSTEM_ID, SEGMENT_SIZE / 2)).then(push), 'Integrity');
      expect(err.message).toContain(`${SEGMENT_SIZE}`);
      expect(walKeys()).toEqual([]);
    });

    it('archives timeline history and backup history files', async () => {
      const history = Buffer.from('1\t0/3000028\tno recovery target specified\n');
      const h = await push(await writeWal('00000002.history', history));
      expect(h.key).toBe(`${CLUSTER}/wal/00000002.history-${sha256(history)}.zst`);
      const backupFile = Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n');
      const b = await push(await writeWal('000000010000000000000002.00000028.backup', backupFile));
      expect(b.key).toMatch(/^main\/wal\/0000000100000000\/000000010000000000000002\.00000028\.backup-[0-9a-f]{64}\.zst$/);
      const dest = path.join(tmp, 'restored.history');
      await archiveGet(repo, CLUSTER, '00000002.history', dest);
      expect((await fs.readFile(dest)).equals(history)).toBe(true);
    });

    it('refuses what is not a WAL file, a missing file, and an uninitialised cluster', async () => {
      await expectStrataError(() => writeWal('postgresql.conf', Buffer.from('x')).then(push), 'InvalidArgument');
      await expectStrataError(() => push(path.join(tmp, 'pg_wal', '000000010000000000000009')), 'NotFound');
      const file = await writeWal(SEGMENT, segment());
      const err = await expectStrataError(() => archivePush({ repo, cluster: 'other', walPath: file, compression: 'zstd' }), 'NotFound');
      expect(err.hint).toMatch(/strata init --cluster other/);
    });
  });

  describe('prepareWal and storePreparedWal (the async pusher: prepared in workers, stored here)', () => {
    const zstd3 = { codec: 'zstd' as const, level: 3 };
    const decompressed = async (key: string) => repo.compressor('zstd').decompress(Buffer.from(memory.objects.get(key)!.data));

    it('prepares files one after another in one scratch without one body overwriting another', async () => {
      const scratch = new WalScratch();
      const a = segment();
      const b = segment();
      const pa = prepareWal(await writeWal(SEGMENT, a), zstd3, scratch);
      const pb = prepareWal(await writeWal('000000010000000000000002', b), zstd3, scratch);
      expect(pa).toMatchObject({ walName: SEGMENT, size: SEGMENT_SIZE, sha256: sha256(a), codec: zstd3 });
      expect(pa.header?.systemIdentifier).toBe(SYSTEM_ID.toString());
      expect(pb.sha256).toBe(sha256(b));
      expect((await repo.compressor('zstd').decompress(pa.body)).equals(a)).toBe(true);
      expect((await repo.compressor('zstd').decompress(pb.body)).equals(b)).toBe(true);
      // Its own memory, exactly its size: a worker hands it over by transfer.
      expect(pa.body.byteOffset).toBe(0);
      expect(pa.body.buffer.byteLength).toBe(pa.body.length);
      const stored = await storePreparedWal({
        repo,
        cluster: CLUSTER,
        walPath: path.join(tmp, 'pg_wal', SEGMENT),
        compression: 'zstd',
        prepared: pa,
      });
      expect(stored).toMatchObject({ walName: SEGMENT, sha256: sha256(a), storedBytes: pa.body.length, alreadyArchived: false });
      expect(memory.objects.get(stored.key)!.data.equals(pa.body)).toBe(true);
    });

    it("compresses again with the repository's compressor what was prepared with another codec, or none", async () => {
      const data = segment();
      const file = await writeWal(SEGMENT, data);
      // A raw body under the repository's .zst key would be unreadable: it must be compressed here.
      const asNone = prepareWal(file, { codec: 'none', level: 0 });
      expect(asNone.body.equals(data)).toBe(true);
      const stored = await storePreparedWal({ repo, cluster: CLUSTER, walPath: file, compression: 'zstd', prepared: asNone });
      expect(stored.key.endsWith('.zst')).toBe(true);
      expect(stored.storedBytes).toBeLessThan(SEGMENT_SIZE);
      expect((await decompressed(stored.key)).equals(data)).toBe(true);

      const other = await writeWal('000000010000000000000002', segment());
      const uncompressed = prepareWal(other, undefined);
      const second = await storePreparedWal({ repo, cluster: CLUSTER, walPath: other, compression: 'zstd', prepared: uncompressed });
      expect(second.storedBytes).toBeLessThan(SEGMENT_SIZE);
      expect((await decompressed(second.key)).equals(await fs.readFile(other))).toBe(true);
    });

    it('stores nothing when the file changed between preparing and compressing again', async () => {
      const file = await writeWal(SEGMENT, segment());
      const prepared = prepareWal(file, { codec: 'zstd', level: 1 });
      await fs.writeFile(file, segment());
      const err = await expectStrataError(
        () => storePreparedWal({ repo, cluster: CLUSTER, walPath: file, compression: 'zstd', prepared }),
        'Integrity',
      );
      expect(err.message).toContain('changed');
      expect(walKeys()).toEqual([]);
    });

    it('refuses a prepared segment from another system before storing anything', async () => {
      const prepared = prepareWal(await writeWal(SEGMENT, segment(42n)), zstd3);
      await expectStrataError(
        () => storePreparedWal({ repo, cluster: CLUSTER, walPath: path.join(tmp, 'pg_wal', SEGMENT), compression: 'zstd', prepared }),
        'Precondition',
      );
      expect(walKeys()).toEqual([]);
    });
  });

  describe('archiveGet', () => {
    it('writes the exact archived bytes to the destination', async () => {
      const data = segment();
      await push(await writeWal(SEGMENT, data));
      const dest = path.join(tmp, 'restore', 'RECOVERYXLOG');
      await fs.mkdir(path.dirname(dest));
      const object = await archiveGet(repo, CLUSTER, SEGMENT, dest);
      expect(object).toMatchObject({ walName: SEGMENT, sha256: sha256(data), extension: 'zst' });
      expect((await fs.readFile(dest)).equals(data)).toBe(true);
      expect(await fs.readdir(path.dirname(dest))).toEqual(['RECOVERYXLOG']);
    });

    it('rejects a name that was never archived with NotFound and the WAL name', async () => {
      const err = await expectStrataError(() => archiveGet(repo, CLUSTER, '000000010000000000000007', path.join(tmp, 'x')), 'NotFound');
      expect(err.context.walName).toBe('000000010000000000000007');
      await expect(fs.access(path.join(tmp, 'x'))).rejects.toThrow();
    });

    it('refuses a damaged object with Integrity and leaves no file behind', async () => {
      const { key } = await push(await writeWal(SEGMENT, segment()));
      const dir = path.join(tmp, 'restore');
      await fs.mkdir(dir);
      const stored = memory.objects.get(key)!;
      for (const at of [0, Math.floor(stored.data.length / 2), stored.data.length - 1]) {
        const damaged = Buffer.from(stored.data);
        damaged[at]! ^= 0x20;
        memory.objects.set(key, { ...stored, data: damaged });
        const err = await expectStrataError(() => archiveGet(repo, CLUSTER, SEGMENT, path.join(dir, 'RECOVERYXLOG')), 'Integrity');
        expect(err.message).toContain(key);
        expect(err.context.key).toBe(key);
        expect(await fs.readdir(dir)).toEqual([]);
      }
    });

    it('refuses a name archived twice with different content', async () => {
      const { key } = await push(await writeWal(SEGMENT, segment()));
      memory.objects.set(key.replace(/-[0-9a-f]{64}\./, `-${'0'.repeat(64)}.`), memory.objects.get(key)!);
      expect(await findWalObjects(repo, CLUSTER, SEGMENT)).toHaveLength(2);
      await expectStrataError(() => fetchWal(repo, CLUSTER, SEGMENT), 'Integrity');
    });
  });
});
