import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAllClusters } from './harness/postgres.js';
import { repoObjectFiles } from './scenarios/repository.js';
import { StrataCluster, restoreInto } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

function flipByte(file: string, at: 'middle' | number = 'middle'): void {
  const buf = fs.readFileSync(file);
  const i = at === 'middle' ? Math.floor(buf.length / 2) : at;
  buf[i] = buf[i]! ^ 0x5a;
  fs.writeFileSync(file, buf);
}

/** A damaged repository never yields a started cluster: the error names the damaged object. */
describe('restore from a damaged repository (PostgreSQL 15)', () => {
  let src: StrataCluster;
  let label: string;
  let objects: string[];
  let startWal: string;

  beforeAll(async () => {
    src = await StrataCluster.create({ version: 15 });
    // Big enough that relation files span several super blocks and need a block map.
    await src.pg.query(`CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g`);
    const res = await src.strata(['backup', '--start-fast', '--json']);
    expect(res.code, res.stderr).toBe(0);
    label = (res.json as { result: { label: string; startWal: string } }).result.label;
    startWal = (res.json as { result: { startWal: string } }).result.startWal;
    await src.pg.query(`INSERT INTO t SELECT g, 'after' FROM generate_series(100001, 100100) g`);
    await src.switchWalAndWait();
    objects = repoObjectFiles(src.repoDir);
  });

  const pick = (re: RegExp) => {
    const found = objects.find((o) => re.test(o));
    expect(found, `no object matching ${re} in ${objects.join(', ')}`).toBeDefined();
    return found!;
  };

  it.each([
    ['manifest', () => pick(new RegExp(`backup/${label}/manifest$`))],
    ['block map', () => pick(new RegExp(`backup/${label}/blockmap/\\d+$`))],
    ['pack', () => pick(new RegExp(`backup/${label}/pack/000000$`))],
    ['WAL needed for consistency', () => pick(new RegExp(`wal/[0-9A-F]{16}/${startWal}-`))],
  ])('fails with an integrity error naming a damaged %s', async (_kind, which) => {
    const key = which();
    const copy = src.cloneRepo(`damaged-${_kind.replace(/\W+/g, '-')}`);
    flipByte(path.join(copy.repoDir, key));
    const { result, pgdata } = await restoreInto(src, ['--target-action', 'promote', '--target-immediate'], {
      configPath: copy.configPath,
    });
    expect(result.code, result.stderr).toBe(5);
    const err = result.json as { name: string; message: string };
    expect(err.name).toBe('Integrity');
    expect(err.message).toContain(key.replace(/^.*?main\//, 'main/'));
    // Nothing left behind: the target is empty again (and pg_control, restored last, never came).
    expect(fs.existsSync(path.join(pgdata, 'global', 'pg_control'))).toBe(false);
    expect(fs.existsSync(pgdata) ? fs.readdirSync(pgdata) : []).toEqual([]);
  });

  it('stops recovery (never promotes early) when a later WAL segment is damaged', async () => {
    const later = objects
      .filter((o) => /wal\/[0-9A-F]{16}\/[0-9A-F]{24}-/.test(o))
      .sort()
      .at(-1)!;
    const copy = src.cloneRepo('damaged-later-wal');
    flipByte(path.join(copy.repoDir, later));
    const { result, pg } = await restoreInto(src, [], { configPath: copy.configPath });
    expect(result.code, result.stderr).toBe(0);
    await expect(pg.start({ waitForPromotion: true, timeoutMs: 60_000 })).rejects.toThrow();
    expect(await pg.isRunning()).toBe(false);
    const log = pg.logTail(200);
    expect(log).toContain(later.replace(/^.*?main\//, 'main/'));
    expect(log).toMatch(/corrupt/);
    expect(log).not.toMatch(/database system is ready to accept connections/);
  });
});
