import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stopAllClusters } from './harness/postgres.js';
import { repoObjectFiles } from './scenarios/repository.js';
import { StrataCluster, restoreInto } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface InfoJson {
  result: {
    backups: { label: string; startWal: string }[];
    incomplete: string[];
    wal: { timeline: number; first: string; last: string; segments: number }[];
    histories: string[];
  };
}

interface ExpireJson {
  status: number;
  result: {
    dryRun: boolean;
    configured: boolean;
    expired: { label: string; type: string; reason: string; objects: number; bytes: number }[];
    interrupted: { label: string }[];
    wal: { timeline: number; first: string; last: string; count: number; bytes: number; keepFrom: string | null }[];
    retained: { label: string; reason: string }[];
    objectsDeleted: number;
    bytesFreed: number;
  };
}

/** Every file under the repository, relative, with its size. */
function repoFiles(dir: string): string[] {
  return repoObjectFiles(dir).map((f) => `${f} ${fs.statSync(path.join(dir, f)).size}`);
}

/** WAL names (without sha256 and extension) stored in the repository. */
function walNames(repoDir: string): string[] {
  return repoFiles(path.join(repoDir, 'main', 'wal')).map((f) => /([^/]+)-[0-9a-f]{64}\.\w+ \d+$/.exec(f)![1]!);
}

describe('strata expire (PostgreSQL 15)', () => {
  it('removes the oldest backups and the WAL before the newest one, and PITR from it still works', async () => {
    const src = await StrataCluster.create({ version: 15 });
    const pg = src.pg;
    await pg.query('CREATE TABLE events (id int PRIMARY KEY, phase text NOT NULL)');
    const labels: string[] = [];
    for (let i = 0; i < 3; i++) {
      await pg.query(`INSERT INTO events SELECT g, 'before backup ${i}' FROM generate_series($1::int, $2::int) g`, [
        i * 1000 + 1,
        (i + 1) * 1000,
      ]);
      await src.switchWalAndWait();
      labels.push(await src.backup());
    }
    await src.switchWalAndWait();
    const before = (await src.strata(['info', '--json'])).json as InfoJson;
    expect(before.result.backups.map((b) => b.label)).toEqual(labels);
    const keep = before.result.backups[2]!;
    expect(walNames(src.repoDir).some((w) => w.slice(0, 24) < keep.startWal)).toBe(true);

    // Without retention configured, nothing goes.
    const none = await src.strata(['expire', '--json']);
    expect(none.code, none.stderr).toBe(0);
    expect((none.json as ExpireJson).result).toMatchObject({ configured: false, expired: [], wal: [], objectsDeleted: 0 });

    fs.appendFileSync(src.configPath, 'retention: { full: 1 }\n');
    const filesBefore = repoFiles(src.repoDir).sort();

    const dryText = await src.strata(['expire', '--dry-run']);
    expect(dryText.code, dryText.stderr).toBe(0);
    expect(dryText.stdout).toContain(`would remove backup ${labels[0]} (full): not the newest full backup (retention.full)`);
    expect(dryText.stdout).toContain(`would remove backup ${labels[1]} (full)`);
    expect(dryText.stdout).toMatch(/would remove WAL timeline 1: 00000001[0-9A-F]{16} \.\. [0-9A-F]{24} \(\d+ files/);
    expect(dryText.stdout).toContain(`kept backup ${labels[2]} (full)`);
    expect(dryText.stdout).toMatch(/Would delete \d+ objects, freeing /);

    const dry = await src.strata(['expire', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    const planned = (dry.json as ExpireJson).result;
    expect(planned.dryRun).toBe(true);
    expect(planned.expired.map((b) => [b.label, b.type])).toEqual([
      [labels[0], 'full'],
      [labels[1], 'full'],
    ]);
    expect(planned.retained.map((b) => b.label)).toEqual([labels[2]]);
    expect(planned.wal).toHaveLength(1);
    expect(planned.wal[0]!.keepFrom).toBe(keep.startWal);
    expect(planned.wal[0]!.last < keep.startWal).toBe(true);
    expect(planned.objectsDeleted).toBeGreaterThan(planned.wal[0]!.count);
    expect(repoFiles(src.repoDir).sort()).toEqual(filesBefore);

    const run = await src.strata(['expire', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const done = (run.json as ExpireJson).result;
    expect(done.dryRun).toBe(false);
    expect(done.expired).toEqual(planned.expired);
    expect(done.wal).toEqual(planned.wal);
    expect([done.objectsDeleted, done.bytesFreed]).toEqual([planned.objectsDeleted, planned.bytesFreed]);
    const filesAfter = repoFiles(src.repoDir);
    expect(filesBefore.length - filesAfter.length).toBe(done.objectsDeleted);
    for (const label of labels.slice(0, 2)) expect(filesAfter.filter((f) => f.includes(label))).toEqual([]);

    const after = (await src.strata(['info', '--json'])).json as InfoJson;
    expect(after.result.backups.map((b) => b.label)).toEqual([labels[2]]);
    expect(after.result.incomplete).toEqual([]);
    expect(after.result.wal.map((w) => w.timeline)).toEqual([1]);
    expect(after.result.wal[0]!.first).toBe(keep.startWal);
    const remaining = walNames(src.repoDir);
    expect(remaining.filter((w) => w.slice(0, 24) < keep.startWal)).toEqual([]);
    expect(remaining).toContain(keep.startWal);

    // Nothing more to do.
    const again = await src.strata(['expire']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('Deleted 0 objects, freed 0 B.');

    // Point-in-time recovery from the remaining backup still works.
    await pg.query(`INSERT INTO events SELECT g, 'wanted' FROM generate_series(3001, 3500) g`);
    await sleep(1100);
    const [{ t }] = (await pg.query<{ t: string }>('SELECT now()::text AS t')) as [{ t: string }];
    await sleep(1100);
    await pg.query(`INSERT INTO events SELECT g, 'too late' FROM generate_series(3501, 4000) g`);
    await src.switchWalAndWait();

    const { result, pg: restored } = await restoreInto(src, ['--target-time', t, '--target-action', 'promote']);
    expect(result.code, result.stderr).toBe(0);
    expect((result.json as { result: { label: string } }).result.label).toBe(labels[2]);
    await restored.start({ waitForPromotion: true, timeoutMs: 120_000 });
    const counts = await restored.query<{ phase: string; n: string }>(
      'SELECT phase, count(*)::text AS n FROM events GROUP BY phase ORDER BY phase',
    );
    expect(counts).toEqual([
      { phase: 'before backup 0', n: '1000' },
      { phase: 'before backup 1', n: '1000' },
      { phase: 'before backup 2', n: '1000' },
      { phase: 'wanted', n: '500' },
    ]);
  });
});
