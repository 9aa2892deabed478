import * as fs from 'node:fs';
import * as path from 'node:path';
import { compress } from 'zstd-napi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAllClusters } from './harness/postgres.js';
import { openBackup } from './scenarios/repository.js';
import { StrataCluster, restoreInto } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

const PAGE = 8192;

interface BackupJson {
  result: { label: string; type: string; parent: string | null; repoBytes: number; bytes: number };
}

async function backup(src: StrataCluster, type?: 'full' | 'incr' | 'diff'): Promise<BackupJson['result']> {
  const res = await src.strata(['backup', '--start-fast', '--json', ...(type ? ['--type', type] : [])]);
  expect(res.code, res.stderr).toBe(0);
  return (res.json as BackupJson).result;
}

function listFiles(dir: string, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? listFiles(p, base) : e.isFile() ? [path.relative(base, p)] : [];
  });
}

/** Pages that differ between two data directories (restored, not started), concatenated. */
function changedPages(before: string, after: string): { pages: number; data: Buffer[] } {
  const data: Buffer[] = [];
  let pages = 0;
  for (const rel of listFiles(after)) {
    if (!/^(base|global|pg_tblspc)\//.test(rel) && !rel.startsWith('pg_xact') && !rel.startsWith('pg_multixact')) continue;
    const b = fs.readFileSync(path.join(after, rel));
    const a = fs.existsSync(path.join(before, rel)) ? fs.readFileSync(path.join(before, rel)) : Buffer.alloc(0);
    for (let off = 0; off < b.length; off += PAGE) {
      const pb = b.subarray(off, off + PAGE);
      if (!pb.equals(a.subarray(off, off + PAGE))) {
        data.push(pb);
        pages++;
      }
    }
  }
  return { pages, data };
}

/** zstd -3 of the changed pages in 1 MiB chunks, the same unit Strata compresses. */
function compressedSize(pages: Buffer[]): number {
  const all = Buffer.concat(pages);
  let total = 0;
  for (let off = 0; off < all.length; off += 1024 * 1024)
    total += compress(all.subarray(off, off + 1024 * 1024), { compressionLevel: 3 }).length;
  return total;
}

describe('incremental and differential backups (PostgreSQL 15)', () => {
  let src: StrataCluster;

  beforeAll(async () => {
    src = await StrataCluster.create({ version: 15 });
    await src.pg.pgbench(['-i', '-s', '20', '-q', 'postgres'], { timeoutMs: 600_000 });
    await src.pg.query('VACUUM (FREEZE, ANALYZE)');
  });

  it('stores only changed pages after pgbench, and the chain restores to an equal cluster', async () => {
    const full = await backup(src);
    expect(full.type).toBe('full');
    await src.pg.pgbench(['-T', '10', '-c', '2', 'postgres']);
    const incr = await backup(src);
    expect(incr.type).toBe('incr');
    expect(incr.parent).toBe(full.label);
    expect(incr.label.startsWith(`${full.label}_`)).toBe(true);

    // What really changed: the two backups' files, compared page by page.
    const a = await restoreInto(src, ['--set', full.label, '--target-immediate']);
    const b = await restoreInto(src, ['--set', incr.label, '--target-immediate']);
    expect(a.result.code, a.result.stderr).toBe(0);
    expect(b.result.code, b.result.stderr).toBe(0);
    const changed = changedPages(a.pgdata, b.pgdata);
    const ideal = compressedSize(changed.data);
    process.stderr.write(
      `incr: ${changed.pages} changed pages, ${(ideal / 2 ** 20).toFixed(1)} MiB compressed; ` +
        `incr stored ${(incr.repoBytes / 2 ** 20).toFixed(1)} MiB (×${(incr.repoBytes / ideal).toFixed(2)}); full ${(full.repoBytes / 2 ** 20).toFixed(1)} MiB\n`,
    );
    expect(changed.pages).toBeGreaterThan(100);
    expect(incr.repoBytes).toBeLessThanOrEqual(1.5 * ideal);

    // The chain (full + incr) with WAL replay equals the source.
    await src.switchWalAndWait();
    const expected = await src.pg.dumpNormalized('postgres');
    const chain = await restoreInto(src, ['--set', incr.label]);
    expect(chain.result.code, chain.result.stderr).toBe(0);
    await chain.pg.start({ waitForPromotion: true, timeoutMs: 180_000 });
    expect(await chain.pg.dumpNormalized('postgres')).toBe(expected);
    await chain.pg.stop();
  });

  it('a diff after two incrs holds the union of their changes and restores like them', async () => {
    // Only this test's changes: autovacuum (still busy after pgbench) would change catalogs and
    // tables between the backups, which the diff would rightly hold beyond the two incrs.
    await src.pg.query('ALTER SYSTEM SET autovacuum = off');
    await src.pg.query('SELECT pg_reload_conf()');
    await src.pg.query('VACUUM (ANALYZE)');
    const full = await backup(src, 'full');
    await src.pg.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 500 = 0`);
    const incr1 = await backup(src, 'incr');
    await src.pg.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 500 = 250`);
    await src.pg.query(`UPDATE pgbench_branches SET bbalance = bbalance + 1`);
    const incr2 = await backup(src, 'incr');
    const diff = await backup(src, 'diff');
    expect([incr1.parent, incr2.parent, diff.parent, diff.type]).toEqual([full.label, incr1.label, full.label, 'diff']);

    const stored = async (label: string) => storedPages(src, label);
    const union = new Set([...(await stored(incr1.label)), ...(await stored(incr2.label))]);
    const inDiff = await stored(diff.label);
    // Files the diff must hold anyway whatever changed (pg_control is rewritten at every checkpoint).
    const relation = (k: string) => /^base\//.test(k);
    expect([...inDiff].filter(relation).sort()).toEqual([...union].filter(relation).sort());
    expect(inDiff.size).toBeGreaterThan(0);

    await src.switchWalAndWait();
    const viaIncr = await restoreInto(src, ['--set', incr2.label, '--target-immediate', '--target-action', 'promote']);
    const viaDiff = await restoreInto(src, ['--set', diff.label, '--target-immediate', '--target-action', 'promote']);
    for (const r of [viaIncr, viaDiff]) {
      expect(r.result.code, r.result.stderr).toBe(0);
      await r.pg.start({ waitForPromotion: true, timeoutMs: 180_000 });
    }
    const q = 'SELECT sum(abalance)::text AS a, (SELECT sum(bbalance) FROM pgbench_branches)::text AS b FROM pgbench_accounts';
    expect(await viaDiff.pg.query(q)).toEqual(await viaIncr.pg.query(q));
    expect(await viaDiff.pg.dumpNormalized('postgres')).toBe(await viaIncr.pg.dumpNormalized('postgres'));
  });
});

/** "path:page" of every page a backup stored itself (not referenced from its parents). */
async function storedPages(src: StrataCluster, label: string): Promise<Set<string>> {
  const { manifest, blockMaps } = await openBackup(src.repoDir, label);
  const out = new Set<string>();
  for (const f of manifest.files) {
    if (f.type !== 'file') continue;
    if (f.data && !f.data.backup) out.add(`${f.path}:*`);
    if (f.blockMap) {
      const entry = await blockMaps.entry(f.blockMap, f.path);
      for (const sb of entry.superBlocks) {
        if (sb.backup) continue;
        for (const p of sb.pages ?? Array.from({ length: sb.count }, (_, i) => sb.first + i)) out.add(`${f.path}:${p}`);
      }
    }
  }
  return out;
}
