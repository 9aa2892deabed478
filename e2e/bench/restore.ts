/**
 * Restore measures for `npm run bench`: a full restore of the newest backup into an empty
 * directory, then a delta restore of that directory after a small change (a few pages overwritten
 * in the largest relation files, one file removed) — for each tool, with the same change.
 * pgBackRest runs `restore` and `restore --delta` with the same process-max as its backups.
 */
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chownToPostgres } from '../harness/postgres.js';

export type RestoreKind = 'restore' | 'delta';

export interface RestoreSample {
  tool: string;
  round: number;
  kind: RestoreKind;
  wallSeconds: number;
  peakRssMiB: number;
}

export interface Timed {
  wallSeconds: number;
  peakRssMiB: number;
  stdout: string;
}

export interface RestoreBenchContext {
  work: string;
  /** Runs `strata <args>` (as postgres, under /usr/bin/time, with the bench config). */
  strata: (args: string[]) => Promise<Timed>;
  /** Runs `pgbackrest <args>` for one of the pgBackRest configurations. */
  pgbr: (tool: string, args: string[]) => Promise<Timed>;
  /** Bytes of page cache freed just before each full restore (see freePageCache); 0: none. */
  freeBytes?: number;
}

/**
 * Writes `bytes` to a scratch file and deletes it, so the restore that follows writes into page
 * cache pages touched a moment ago. On these VMs writing 1.5 GB into the page cache costs 0.5 s of
 * kernel time, or 3–4 s when the guest's free pages were not touched recently, and which of the
 * two a restore got swung its wall time by ±30% for either tool (docs/performance.md). The pages of
 * a deleted file that was never flushed go back to the free lists without being written.
 */
export function freePageCache(dir: string, bytes: number): void {
  if (bytes <= 0) return;
  const file = path.join(dir, 'page-cache-scratch');
  const chunk = Buffer.alloc(4 * 1024 * 1024);
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < bytes; done += chunk.length) fs.writeSync(fd, chunk);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file);
  }
}

/** The same small change in any restored directory: 4 pages in each of the 3 largest relation files, one small file removed. */
export function smallChange(pgdata: string): void {
  const files: { p: string; size: number }[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && /^\d+$/.test(e.name)) files.push({ p, size: fs.statSync(p).size });
    }
  };
  walk(path.join(pgdata, 'base'));
  files.sort((a, b) => b.size - a.size || (a.p < b.p ? -1 : 1));
  const page = Buffer.alloc(8192);
  for (const { p, size } of files.slice(0, 3)) {
    const fd = fs.openSync(p, 'r+');
    for (let i = 1; i <= 4; i++) {
      randomFillSync(page);
      fs.writeSync(fd, page, 0, page.length, Math.floor((size / 8192) * (i / 5)) * 8192);
    }
    fs.closeSync(fd);
  }
  const small = files.filter((f) => f.size > 0 && f.size <= 8192).at(-1);
  if (small) fs.rmSync(small.p);
}

function freshDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { mode: 0o700 });
  chownToPostgres(dir);
}

/** One round of restores for `tools`, in that order. */
export async function benchRestores(ctx: RestoreBenchContext, tools: string[], round: number): Promise<RestoreSample[]> {
  const samples: RestoreSample[] = [];
  for (const tool of tools) {
    const dir = path.join(ctx.work, `restore-${tool}`);
    freshDir(dir);
    const run = (delta: boolean) =>
      tool === 'strata'
        ? ctx.strata(['restore', '--pgdata', dir, '--archive-mode', 'off', ...(delta ? ['--delta'] : [])])
        : ctx.pgbr(tool, ['restore', `--pg1-path=${dir}`, ...(delta ? ['--delta'] : [])]);
    freePageCache(ctx.work, ctx.freeBytes ?? 0);
    const full = await run(false);
    samples.push({ tool, round, kind: 'restore', wallSeconds: full.wallSeconds, peakRssMiB: full.peakRssMiB });
    smallChange(dir);
    const delta = await run(true);
    samples.push({ tool, round, kind: 'delta', wallSeconds: delta.wallSeconds, peakRssMiB: delta.peakRssMiB });
  }
  return samples;
}

/**
 * Removes the restored directories of a round; run before the next round's backups, not right
 * before a restore: ext4 passes over inodes freed in the last minute when it creates files, so a
 * restore started just after another tool's directory was deleted paid ~1 ms per created file.
 */
export function removeRestoreDirs(work: string): void {
  for (const name of fs.readdirSync(work))
    if (name.startsWith('restore-')) fs.rmSync(path.join(work, name), { recursive: true, force: true });
}
