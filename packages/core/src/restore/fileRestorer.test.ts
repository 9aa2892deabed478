import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ManifestFile } from '../manifest/types.js';
import { StagedFile, setMetadata } from './fileRestorer.js';
import { HashThread } from '../pipeline/HashThread.js';

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

/** Consecutive pages of a frame as runs [first page, count]. */
function runsOf(frame: number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const page of frame) {
    const last = runs.at(-1);
    if (last && last[0] + last[1] === page) last[1]++;
    else runs.push([page, 1]);
  }
  return runs;
}

describe.each(['page by page', 'in runs'])('StagedFile, pages put %s', (how) => {
  const PAGE = 16;
  const putAll = (staged: StagedFile, content: Buffer, frame: number[], page = PAGE) => {
    const runs: [number, number][] = how === 'in runs' ? runsOf(frame) : frame.map((p) => [p, 1]);
    for (const [first, count] of runs) {
      const from = first * page;
      staged.put(first, content, from, Math.min(count * page, content.length - from));
    }
  };

  /** Feeds `order` (lists of pages, one list per frame) through a StagedFile of `window` pages; returns the file and its sha256. */
  async function stage(content: Buffer, order: number[][], windowPages: number, hasher?: HashThread) {
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
    const staged = new StagedFile(handle, content.length, PAGE, pages, windowPages * PAGE, hasher);
    try {
      for (const frame of order) {
        putAll(staged, content, frame);
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

  it("keeps an incremental frame's pages from a long stretch of the file in its default window", async () => {
    // 16 MiB of 8 KiB pages; the "incremental" frame holds every 8th page of the whole file (its
    // 128-page frames span ~7 MiB after 30 s of pgbench at scale 100), then the rest in file order.
    const page = 8192;
    const pages = 2048;
    const big = Buffer.alloc(pages * page);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
    const out = path.join(dir, `staged-default-window-${how.replace(/ /g, '-')}`);
    const handle = await fsp.open(out, 'wx+');
    let writes = 0;
    const write = handle.write.bind(handle);
    handle.write = ((...args: Parameters<typeof handle.write>) => {
      writes++;
      return write(...args);
    }) as typeof handle.write;
    try {
      const staged = new StagedFile(handle, big.length, page, pages);
      const sparse = Array.from({ length: pages / 8 }, (_, i) => i * 8);
      const rest = Array.from({ length: pages }, (_, i) => i).filter((p) => p % 8 !== 0);
      for (const frame of [sparse, ...Array.from({ length: rest.length / 112 }, (_, i) => rest.slice(i * 112, (i + 1) * 112))]) {
        putAll(staged, big, frame, page);
        await staged.flush();
      }
      expect(await staged.digest()).toBe(createHash('sha256').update(big).digest('hex'));
      expect(fs.readFileSync(out).equals(big)).toBe(true);
      // Large prefix writes only: none of the sparse frame's pages went out one by one.
      expect(writes).toBeLessThanOrEqual(8);
    } finally {
      await handle.close();
    }
  });

  it('hashes on the hash thread from shared staging buffers, read-backs included', async () => {
    const hasher = new HashThread();
    try {
      // Window of 4 pages: pages beyond it are written at once and read back for the hash.
      const order = [
        [0, 1, 15, 16],
        [2, 3, 4, 5],
        [6, 7, 8, 9, 10, 11],
        [12, 13, 14, 17, 18, 19],
      ];
      const [a, b] = await Promise.all([stage(content, order, 4, hasher), stage(content, order.slice().reverse(), 32, hasher)]);
      expect(a.data.equals(content)).toBe(true);
      expect(a.sha256).toBe(sha);
      expect(b.sha256).toBe(sha);
      // A hash thread reads shared memory only: an ordinary buffer is refused, not copied.
      await expect(Promise.resolve(hasher.open().update(Buffer.from('x')))).rejects.toThrow(/shared buffers/);
    } finally {
      await hasher.close();
    }
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
        // Partly below the written prefix (8, 9), partly not (10, 11).
        [8, 9, 10, 11],
        [10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
      ],
      32,
    );
    expect(r.data.equals(content)).toBe(true);
    expect(r.sha256).toBe(sha);
  });

  it('restores the file when a later frame brings pages beyond the window again, a run in one write', async () => {
    // Window of 4: 15 and 16 go out at once; then a run 14-17 beyond the window again.
    const r = await stage(
      content,
      [
        [0, 15, 16],
        [1, 14, 15, 16, 17],
        [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 18, 19],
      ],
      4,
    );
    expect(r.data.equals(content)).toBe(true);
    expect(r.sha256).toBe(sha);
    // Page by page: 15, 16, prefix 0; 14, 17, prefix 1; 6-13 one by one, 18, 19, prefix 2-5. In
    // runs: 15-16, prefix 0; 14, 17 (15 and 16 are not written again), prefix 1; 6-13, 18-19, prefix 2-5.
    expect(r.writes).toBe(how === 'in runs' ? 8 : 17);
  });
});
