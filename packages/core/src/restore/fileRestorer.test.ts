import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ManifestFile } from '../manifest/types.js';
import { StagedFile, setMetadata } from './fileRestorer.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-meta-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('setMetadata', () => {
  it('restores mtimes whose floor in milliseconds equals the manifest for every millisecond value', async () => {
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'x');
    const base = Date.UTC(2026, 10, 22, 3, 38, 5);
    const wrong: number[] = [];
    // 1000 consecutive milliseconds cover every fractional part a double can mangle.
    for (let ms = 0; ms < 1000; ms++) {
      const entry: ManifestFile = { path: 'f', type: 'file', mode: 0o600, uid: 0, gid: 0, mtime: base + ms, size: 1 };
      await setMetadata(file, entry, { chown: false });
      if (Math.floor(fs.statSync(file).mtimeMs) !== entry.mtime) wrong.push(ms);
    }
    expect(wrong).toEqual([]);
  });
});

describe('StagedFile', () => {
  const PAGE = 16;

  /** Feeds `order` (lists of pages, one list per frame) through a StagedFile of `window` pages; returns the file and its sha256. */
  async function stage(content: Buffer, order: number[][], windowPages: number) {
    const out = path.join(dir, `staged-${Math.random().toString(36).slice(2)}`);
    const handle = await fsp.open(out, 'wx+');
    const writes: number[] = [];
    const write = handle.write.bind(handle);
    // Count the writes the file gets: regions, not pages.
    handle.write = ((...args: Parameters<typeof handle.write>) => {
      writes.push(1);
      return write(...args);
    }) as typeof handle.write;
    const pages = Math.ceil(content.length / PAGE);
    const staged = new StagedFile(handle, content.length, PAGE, pages, windowPages * PAGE);
    try {
      for (const frame of order) {
        for (const page of frame) staged.put(page, content, page * PAGE, Math.min(PAGE, content.length - page * PAGE));
        await staged.flush(true);
      }
      const sha256 = await staged.digest();
      return { data: fs.readFileSync(out), sha256, writes: writes.length };
    } finally {
      await handle.close();
    }
  }

  const content = Buffer.from(Array.from({ length: 20 * PAGE - 5 }, (_, i) => (i * 7 + (i >> 4)) & 0xff));
  const sha = createHash('sha256').update(content).digest('hex');

  it('writes pages arriving out of order in file order, hashing as it goes', async () => {
    // A "full" frame of pages 0-9 without 3 and 7 (an incremental holds them), the incremental's frame, then 10-19.
    const r = await stage(
      content,
      [
        [0, 1, 2, 4, 5, 6, 8, 9],
        [3, 7, 12],
        [10, 11, 13, 14, 15, 16, 17, 18, 19],
      ],
      32,
    );
    expect(r.data.equals(content)).toBe(true);
    expect(r.sha256).toBe(sha);
    // Prefixes go out whole: pages 0-2, then 3-10 and the rest once complete — not one write per run.
    expect(r.writes).toBeLessThanOrEqual(3);
  });

  it('writes pages beyond its window at once and reads them back for the hash', async () => {
    // Window of 4 pages: page 15 arrives while the prefix is at 0, and page 2 is missing until later.
    const r = await stage(
      content,
      [
        [0, 1, 15, 16],
        [2, 3, 4, 5],
        [6, 7, 8, 9, 10, 11],
        [12, 13, 14, 17, 18, 19],
      ],
      4,
    );
    expect(r.data.equals(content)).toBe(true);
    expect(r.sha256).toBe(sha);
  });

  it('fails when a page never came', async () => {
    await expect(stage(content, [[0, 1, 2, 4]], 32)).rejects.toThrow(/missing page 3/);
  });

  it('ignores pages of a frame read again after they were written', async () => {
    const r = await stage(
      content,
      [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [0, 1, 2],
        [10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
      ],
      32,
    );
    expect(r.data.equals(content)).toBe(true);
    expect(r.sha256).toBe(sha);
  });
});
