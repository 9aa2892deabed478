import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BlockPool } from '../pipeline/BlockPool.js';
import { zstdPlugin } from '../compression/zstd.js';
import { Repository } from '../repository/Repository.js';
import { MemoryBackend } from '../testing/memoryBackend.js';
import { PackWriter } from '../blocks/PackWriter.js';
import { BlockMapWriter } from '../blocks/BlockMapWriter.js';
import type { Manifest, ManifestFile } from '../manifest/types.js';
import { isStrataError } from '../errors/index.js';
import { copyFile } from '../backup/fileCopier.js';
import { FrameReader, WINDOWS_KEPT, restoreFile } from './fileRestorer.js';
import { keys } from '../repository/keys.js';
import { deltaRestoreFile } from './delta.js';
import { FileSyncer } from './FileSyncer.js';

const PAGE = 8192;
const SUPER = 4 * PAGE;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-pipelined-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const manifestOf = (label: string, files: ManifestFile[]) =>
  ({ label, cluster: 'main', files, options: { compression: 'zstd' } }) as unknown as Manifest;
// Two slots: frames of one file in flight must take turns without deadlocking.
const newPool = () => new BlockPool({ processMax: 2, superBlockSize: SUPER, pageSize: PAGE, codec: 'zstd', level: 3, slots: 2 });

async function backup(
  repo: Repository,
  label: string,
  file: string,
  parent?: { full: ManifestFile; label: string },
): Promise<ManifestFile> {
  const zstd = await zstdPlugin.create({ level: 3 }, { configDir: '/' });
  const packs = new PackWriter(repo, 'main', label, 2 * SUPER);
  const blockMaps = new BlockMapWriter(repo, 'main', label, 'zstd');
  const pool = newPool();
  try {
    const opts = { packs, blockMaps, compressor: zstd, pool, pageSize: PAGE, superBlockSize: SUPER, changedBuffer: Buffer.alloc(SUPER) };
    const entry = { path: 'base/1/100', absPath: file, type: 'file' as const, stat: fs.statSync(file) };
    const parentMap = parent
      ? await new FrameReader(repo, manifestOf(parent.label, [parent.full])).blockMap(parent.full.blockMap!, 'base/1/100')
      : undefined;
    const copied = (await copyFile(entry, opts, parentMap ? { map: parentMap, holder: parent!.label } : undefined))!;
    await packs.close();
    await blockMaps.flush();
    return copied;
  } finally {
    await pool.close();
  }
}

/** A 50-page file, then an incremental with scattered pages changed: its pages come back out of order. */
async function chain() {
  const backend = new MemoryBackend();
  const repo = new Repository('mem', backend, new Map([['zstd', await zstdPlugin.create({ level: 3 }, { configDir: '/' })]]));
  const file = path.join(dir, `rel-${Math.random().toString(36).slice(2)}`);
  const content = Buffer.alloc(50 * PAGE + 1000);
  for (let i = 0; i < content.length; i += 512) content.writeUInt32BE(i, i);
  fs.writeFileSync(file, content);
  const full = await backup(repo, 'F', file);
  const changed = Buffer.from(content);
  for (const p of [1, 9, 10, 33, 50]) changed.fill(p, p * PAGE, Math.min((p + 1) * PAGE, changed.length));
  fs.writeFileSync(file, changed);
  const incr = await backup(repo, 'F_I', file, { full, label: 'F' });
  return { repo, backend, changed, incr };
}

describe('FrameReader read-ahead windows', () => {
  it(`fetches each window of a pack once while frames revisit up to ${WINDOWS_KEPT} windows`, async () => {
    const zstd = await zstdPlugin.create({ level: 3 }, { configDir: '/' });
    const repo = new Repository('mem', new MemoryBackend(), new Map([['zstd', zstd]]));
    // One frame per window: frames of files restored at once (and of a chain's packs) interleave.
    const WINDOW = 4096;
    const contents = Array.from({ length: WINDOWS_KEPT }, (_, i) => Buffer.alloc(PAGE, i + 1));
    const frames = await Promise.all(contents.map((c) => zstd.compress(c)));
    const pack = Buffer.alloc(WINDOWS_KEPT * WINDOW);
    const refs = frames.map((f, i) => {
      expect(f.length).toBeLessThan(WINDOW);
      f.copy(pack, i * WINDOW);
      return { pack: 1, offset: i * WINDOW, length: f.length };
    });
    await repo.put(keys.pack('main', 'F', 1), pack);
    const reader = new FrameReader(repo, manifestOf('F', []));
    reader.readAhead = WINDOW;
    for (let pass = 0; pass < 2; pass++) {
      for (const [i, ref] of refs.entries()) {
        const data = await reader.withFrame(ref, PAGE, `frame ${i}`, (d) => Buffer.from(d));
        expect(data.equals(contents[i]!)).toBe(true);
      }
    }
    // The second pass came from the windows kept: every byte of the pack fetched once.
    expect(reader.bytesFetched).toBe(pack.length);
  });
});

describe('FrameReader keeps the windows planned frames still need', () => {
  const WINDOW = 4096;
  /** A pack of `n` windows holding two one-page frames each (frame 2w and 2w + 1 in window w). */
  async function twoFramesPerWindow(n: number) {
    const zstd = await zstdPlugin.create({ level: 3 }, { configDir: '/' });
    const repo = new Repository('mem', new MemoryBackend(), new Map([['zstd', zstd]]));
    const contents = Array.from({ length: 2 * n }, (_, i) => Buffer.alloc(PAGE, i + 1));
    const pack = Buffer.alloc(n * WINDOW);
    const refs = await Promise.all(
      contents.map(async (c, i) => {
        const f = await zstd.compress(c);
        expect(f.length).toBeLessThan(WINDOW / 2);
        const offset = Math.floor(i / 2) * WINDOW + (i % 2) * (WINDOW / 2);
        f.copy(pack, offset);
        return { pack: 1, offset, length: f.length };
      }),
    );
    await repo.put(keys.pack('main', 'F', 1), pack);
    const reader = new FrameReader(repo, manifestOf('F', []));
    reader.readAhead = WINDOW;
    reader.windowsKept = 1;
    const read = async (i: number) => {
      const data = await reader.withFrame(refs[i]!, PAGE, `frame ${i}`, (d) => Buffer.from(d));
      expect(data.equals(contents[i]!)).toBe(true);
    };
    return { reader, refs, read, packBytes: pack.length };
  }

  it('keeps a planned window while other files go through more windows than windowsKept, and lets it go once done', async () => {
    const { reader, refs, read, packBytes } = await twoFramesPerWindow(6);
    // A file in progress reads frames 0 and 1 (window 0); between them other files read windows 1-5.
    reader.plan([refs[0]!, refs[1]!]);
    await read(0);
    reader.done(refs[0]!);
    for (const i of [2, 4, 6, 8, 10]) await read(i);
    await read(1);
    reader.done(refs[1]!);
    // Window 0 was fetched once, though 5 others came between (LRU with 1 kept would have evicted it).
    expect(reader.bytesFetched).toBe(packBytes);
    // No planned frame needs window 0 any more: it goes like any other. Window 1 (fetched again, as
    // only window 5 and the planned window 0 were kept) pushes it out, and it is fetched again.
    await read(3);
    expect(reader.bytesFetched).toBe(packBytes + WINDOW);
    await read(0);
    expect(reader.bytesFetched).toBe(packBytes + 2 * WINDOW);
  });

  it('keeps no more than windowsMax windows, planned or not', async () => {
    const { reader, refs, read, packBytes } = await twoFramesPerWindow(4);
    reader.windowsMax = 2;
    reader.plan(refs);
    for (const i of [0, 2, 4, 6]) await read(i);
    expect(reader.bytesFetched).toBe(packBytes);
    // Windows 0 and 1 were dropped to stay at 2: their second frames are fetched again.
    await read(1);
    expect(reader.bytesFetched).toBe(packBytes + WINDOW);
  });

  it('a restored chain releases every window it planned', async () => {
    const { repo, changed, incr } = await chain();
    const pool = newPool();
    try {
      const reader = new FrameReader(repo, manifestOf('F_I', [incr]), pool);
      reader.readAhead = 3 * PAGE;
      const out = path.join(dir, 'chain-planned');
      await restoreFile(incr, out, reader, { chown: false });
      expect(fs.readFileSync(out).equals(changed)).toBe(true);
      expect(reader.plannedWindows).toBe(0);
    } finally {
      await pool.close();
    }
  });
});

describe('restore through the block pool, frames pipelined', () => {
  it.each([false, true])(
    'restores a chain whose pages arrive out of order and checks its sha256 (trusting frame checksums: %s)',
    async (trust) => {
      const { repo, changed, incr } = await chain();
      expect(incr.sha256).toBe(createHash('sha256').update(changed).digest('hex'));
      const pool = newPool();
      try {
        const reader = new FrameReader(repo, manifestOf('F_I', [incr]), pool);
        reader.trustFrameChecksums = trust;
        reader.readAhead = 3 * PAGE; // windows smaller than some frames: frames spanning windows are joined
        const out = path.join(dir, `chain-restored-${trust}`);
        const syncer = new FileSyncer();
        await restoreFile(incr, out, reader, { chown: false, syncer });
        await syncer.drain();
        // Handed over complete, made durable and closed by the syncer.
        expect(syncer.synced).toBe(1);
        expect(fs.readFileSync(out).equals(changed)).toBe(true);
      } finally {
        await pool.close();
      }
    },
  );

  it.each([false, true])(
    'fails with an integrity error, and does not hang, when a frame in mid-file is damaged (trusting frame checksums: %s)',
    async (trust) => {
      const { repo, backend, incr } = await chain();
      const pack = [...backend.objects.entries()].find(([k]) => k.includes('/F/pack/'))!;
      // Damage the middle of the full backup's first pack: some frame of the file breaks.
      const body = pack[1].data;
      body[Math.floor(body.length / 2)]! ^= 0xff;
      const pool = newPool();
      try {
        const reader = new FrameReader(repo, manifestOf('F_I', [incr]), pool);
        reader.trustFrameChecksums = trust;
        reader.readAhead = 3 * PAGE;
        const err: unknown = await restoreFile(incr, path.join(dir, `chain-damaged-${trust}`), reader, { chown: false }).catch(
          (e: unknown) => e,
        );
        expect(isStrataError(err) && err.code === 'Integrity').toBe(true);
        // Every permit came back: the next file restores; and no window stays kept for its frames.
        expect(await reader.inFlight.acquire().then(() => 'free')).toBe('free');
        expect(reader.plannedWindows).toBe(0);
      } finally {
        await pool.close();
      }
    },
  );

  it('delta: compares a file in one worker pass, patches only differing pages, keeps an equal file', async () => {
    const { repo, changed, incr } = await chain();
    const pool = newPool();
    try {
      const reader = new FrameReader(repo, manifestOf('F_I', [incr]), pool);
      const dest = path.join(dir, 'delta-target');
      fs.writeFileSync(dest, changed);
      expect(await deltaRestoreFile(incr, dest, reader, { chown: false, force: false })).toBe('kept');
      expect(reader.bytesFetched).toBe(0);
      // Two pages damaged and the file cut inside its last page.
      const damaged = Buffer.from(changed.subarray(0, changed.length - 300));
      damaged.fill(0x55, 7 * PAGE, 8 * PAGE);
      damaged.fill(0x66, 40 * PAGE + 10, 40 * PAGE + 20);
      fs.writeFileSync(dest, damaged);
      expect(await deltaRestoreFile(incr, dest, reader, { chown: false, force: false })).toBe('patched');
      expect(fs.readFileSync(dest).equals(changed)).toBe(true);
      expect(reader.bytesFetched).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
  });
});

describe('frames trusted by their checksum', () => {
  it('still fails the file when a frame decompresses to other content than the backup held (sha256)', async () => {
    const { repo, backend, incr } = await chain();
    // Replace the incremental's frame with a valid zstd frame of other bytes of the same size: its
    // own checksum passes, the pages are wrong.
    const zstd = await zstdPlugin.create({ level: 3 }, { configDir: '/' });
    const sb = (await new FrameReader(repo, manifestOf('F_I', [incr])).blockMap(incr.blockMap!, 'base/1/100')).superBlocks.at(-1)!;
    const [key, obj] = [...backend.objects.entries()].find(([k]) => k.includes('/F_I/pack/'))!;
    const other = await zstd.compress(Buffer.alloc(sb.size ?? sb.count * PAGE, 0x5a));
    expect(other.length).toBeLessThanOrEqual(sb.length);
    const body = Buffer.from(obj.data);
    other.copy(body, sb.offset);
    body.fill(0, sb.offset + other.length, sb.offset + sb.length);
    backend.objects.set(key, { ...obj, data: body });
    sb.length = other.length;
    const pool = newPool();
    try {
      const reader = new FrameReader(repo, manifestOf('F_I', [incr]), pool);
      reader.trustFrameChecksums = true;
      const err: unknown = await restoreFile(incr, path.join(dir, 'chain-other'), reader, { chown: false }).catch((e: unknown) => e);
      expect(isStrataError(err) && err.code === 'Integrity' ? err.message : err).toMatch(/checksum of the restored file does not match/);
    } finally {
      await pool.close();
    }
  });
});
