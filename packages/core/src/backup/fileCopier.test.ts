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
import { pagesOf } from '../blocks/superBlocks.js';
import type { Manifest, ManifestFile } from '../manifest/types.js';
import type { Compressor } from '../plugins/contract.js';
import { FrameReader, restoreFile } from '../restore/fileRestorer.js';
import { copyFile, type CopierOptions } from './fileCopier.js';

const PAGE = 8192;
const SUPER = 16 * PAGE;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-copier-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function setup() {
  const memory = new MemoryBackend();
  const repo = new Repository('mem', memory, new Map([['zstd', await zstdPlugin.create({ level: 3 }, { configDir: '/' })]]));
  return { memory, repo };
}

function copier(repo: Repository, label: string, compressor: Compressor): CopierOptions & { close: () => Promise<void> } {
  const packs = new PackWriter(repo, 'main', label, 4 * SUPER);
  const blockMaps = new BlockMapWriter(repo, 'main', label, 'zstd');
  // Two slots only: a 40-page file (3 super blocks) must cycle them.
  const pool = new BlockPool({ processMax: 2, superBlockSize: SUPER, pageSize: PAGE, codec: 'zstd', level: 3, slots: 2 });
  return {
    packs,
    blockMaps,
    compressor,
    pool,
    pageSize: PAGE,
    superBlockSize: SUPER,
    changedBuffer: Buffer.alloc(SUPER),
    close: async () => {
      await packs.close();
      await blockMaps.flush();
      await pool.close();
    },
  };
}

function manifestOf(label: string, files: ManifestFile[]): Manifest {
  return { label, cluster: 'main', files, options: { compression: 'zstd' } } as unknown as Manifest;
}

describe('copyFile', () => {
  it('copies a multi-super-block file in order through the pool and restores it', async () => {
    const { repo } = await setup();
    const file = path.join(dir, 'big');
    const content = Buffer.alloc(5 * SUPER + 3 * PAGE + 100);
    for (let i = 0; i < content.length; i += 4096) content.writeUInt32BE(i, i);
    fs.writeFileSync(file, content);
    const zstd = await zstdPlugin.create({ level: 3 }, { configDir: '/' });
    const c = copier(repo, 'F', zstd);
    const copied = (await copyFile({ path: 'base/1/200', absPath: file, type: 'file', stat: fs.statSync(file) }, c))!;
    await c.close();
    expect(copied.size).toBe(content.length);
    expect(copied.sha256).toBe(createHash('sha256').update(content).digest('hex'));
    const reader = new FrameReader(repo, manifestOf('F', [copied]));
    const map = await reader.blockMap(copied.blockMap!, copied.path);
    expect(map.superBlocks.map((sb) => sb.first)).toEqual([0, 16, 32, 48, 64, 80]);
    const out = path.join(dir, 'big-restored');
    await restoreFile(copied, out, reader, { chown: false });
    expect(fs.readFileSync(out).equals(content)).toBe(true);
  });

  it('restores small files side by side in a pack from one read-ahead window', async () => {
    const { repo } = await setup();
    const c = copier(repo, 'F', await zstdPlugin.create({ level: 3 }, { configDir: '/' }));
    const copied: ManifestFile[] = [];
    const contents: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      const file = path.join(dir, `small-${i}`);
      contents.push(Buffer.alloc(3000 + i * 100, i + 1));
      fs.writeFileSync(file, contents[i]!);
      copied.push((await copyFile({ path: `base/1/${400 + i}`, absPath: file, type: 'file', stat: fs.statSync(file) }, c))!);
    }
    await c.close();
    const reader = new FrameReader(repo, manifestOf('F', copied));
    reader.readAhead = 1024 * 1024;
    for (let i = 0; i < 5; i++) {
      const out = path.join(dir, `small-restored-${i}`);
      await restoreFile(copied[i]!, out, reader, { chown: false });
      expect(fs.readFileSync(out).equals(contents[i]!)).toBe(true);
    }
    // One ranged read from the first frame to the end of the pack served all five.
    const pack = copied.map((f) => f.data!);
    expect(reader.bytesFetched).toBe(pack.at(-1)!.offset + pack.at(-1)!.length - pack[0]!.offset);
  });

  it('skips a file that vanished before it was read', async () => {
    const { repo } = await setup();
    const file = path.join(dir, 'gone');
    fs.writeFileSync(file, 'x');
    const stat = fs.statSync(file);
    fs.rmSync(file);
    const c = copier(repo, 'F', await zstdPlugin.create({ level: 3 }, { configDir: '/' }));
    expect(await copyFile({ path: 'base/1/300', absPath: file, type: 'file', stat }, c)).toBeUndefined();
    await c.close();
  });
});

describe('copyFile with a parent', () => {
  it('stores exactly the changed pages and restores the new content through the chain', async () => {
    const { repo } = await setup();
    const file = path.join(dir, 'rel');
    const pages = 40;
    const content = Buffer.alloc(pages * PAGE);
    for (let p = 0; p < pages; p++) content.fill(p + 1, p * PAGE, (p + 1) * PAGE);
    fs.writeFileSync(file, content);
    const entry = () => ({ path: 'base/1/100', absPath: file, type: 'file' as const, stat: fs.statSync(file) });

    const zstd = await zstdPlugin.create({ level: 3 }, { configDir: '/' });
    const c1 = copier(repo, 'F', zstd);
    const full = (await copyFile(entry(), c1))!;
    await c1.close();
    expect(full.blockMap).toEqual({ object: 0, index: 0 });

    // Rewrite the file (new mtime) with pages 3 and 17 changed and two pages appended.
    const changed = Buffer.concat([content, Buffer.alloc(2 * PAGE, 0xee)]);
    changed.fill(0xaa, 3 * PAGE, 4 * PAGE);
    changed.fill(0xbb, 17 * PAGE, 18 * PAGE);
    fs.writeFileSync(file, changed);

    const reader = new FrameReader(repo, manifestOf('F', [full]));
    const parentMap = await reader.blockMap(full.blockMap!, full.path);
    const c2 = copier(repo, 'F_I', zstd);
    const incr = (await copyFile(entry(), c2, { map: parentMap, holder: 'F' }))!;
    await c2.close();

    const incrReader = new FrameReader(repo, manifestOf('F_I', [incr]));
    const map = await incrReader.blockMap(incr.blockMap!, incr.path);
    const fresh = map.superBlocks.filter((sb) => !sb.backup).flatMap(pagesOf);
    expect(fresh).toEqual([3, 17, 40, 41]);
    expect(map.superBlocks.filter((sb) => sb.backup === 'F').length).toBeGreaterThan(0);
    expect(incr.sha256).toBe(createHash('sha256').update(changed).digest('hex'));

    const out = path.join(dir, 'restored');
    await restoreFile(incr, out, incrReader, { chown: false });
    expect(fs.readFileSync(out).equals(changed)).toBe(true);
    expect(incrReader.bytesFetched).toBeGreaterThan(0);
  });
});
