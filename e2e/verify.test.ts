import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAllClusters } from './harness/postgres.js';
import { runStrata } from './harness/strata.js';
import { StrataCluster } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

interface VerifyJson {
  status: number;
  result: { ok: boolean; backups: string[]; problems: { kind: string; object: string; detail: string }[]; wal: { missing: string[] }[] };
}

describe('strata verify (PostgreSQL 15)', () => {
  let src: StrataCluster;
  let label: string;
  let walKeys: string[];

  beforeAll(async () => {
    src = await StrataCluster.create({ version: 15, backup: { packSize: 1024 * 1024 } });
    await src.pg.query(`CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g`);
    label = await src.backup();
    for (let i = 0; i < 3; i++) {
      await src.pg.query(`INSERT INTO t SELECT g, 'more' FROM generate_series(1, 1000) g`);
      await src.switchWalAndWait();
    }
    const incr = await src.strata(['backup', '--type', 'incr', '--start-fast']);
    expect(incr.code, incr.stderr).toBe(0);
    const walRoot = path.join(src.repoDir, 'main', 'wal', '0000000100000000');
    walKeys = fs
      .readdirSync(walRoot)
      .filter((f) => /^[0-9A-F]{24}-/.test(f))
      .sort();
  });

  async function verify(configPath: string, extra: string[] = []): Promise<{ code: number | null; json: VerifyJson; stdout: string }> {
    const res = await runStrata(['verify', '--json', ...extra], { config: configPath });
    return { code: res.code, json: res.json as VerifyJson, stdout: res.stdout };
  }

  it('passes a clean repository with exit 0', async () => {
    const { code, json } = await verify(src.configPath);
    expect(code).toBe(0);
    expect(json.result.ok).toBe(true);
    expect(json.result.problems).toEqual([]);
    expect(json.result.backups).toHaveLength(2);
    const human = await runStrata(['verify'], { config: src.configPath });
    expect(human.stdout).toMatch(/No problems found/);
  });

  it('names a pack with a flipped byte', async () => {
    const copy = src.cloneRepo('verify-flip');
    const pack = path.join(copy.repoDir, 'main', 'backup', label, 'pack', '000001');
    const buf = fs.readFileSync(pack);
    const at = Math.floor(buf.length / 3);
    buf[at] = buf[at]! ^ 0x10;
    fs.writeFileSync(pack, buf);
    const { code, json } = await verify(copy.configPath);
    expect(code).toBe(5);
    expect(json.status).toBe(5);
    expect(json.result.problems.map((p) => [p.kind, p.object])).toContainEqual(['corrupt', `main/backup/${label}/pack/000001`]);
  });

  it('names a deleted pack', async () => {
    const copy = src.cloneRepo('verify-missing-pack');
    fs.rmSync(path.join(copy.repoDir, 'main', 'backup', label, 'pack', '000000'));
    const { code, json } = await verify(copy.configPath);
    expect(code).toBe(5);
    expect(json.result.problems).toContainEqual(expect.objectContaining({ kind: 'missing', object: `main/backup/${label}/pack/000000` }));
  });

  it('names a missing WAL segment in the middle of the archive', async () => {
    const copy = src.cloneRepo('verify-wal-gap');
    const victim = walKeys[Math.floor(walKeys.length / 2)]!;
    fs.rmSync(path.join(copy.repoDir, 'main', 'wal', '0000000100000000', victim));
    const segment = victim.slice(0, 24);
    const { code, json, stdout } = await verify(copy.configPath);
    expect(code).toBe(5);
    expect(json.result.problems).toContainEqual(expect.objectContaining({ kind: 'gap', object: segment }));
    expect(json.result.wal[0]!.missing).toEqual([segment]);
    expect(stdout).toContain(segment);
    const human = await runStrata(['verify'], { config: copy.configPath });
    expect(human.code).toBe(5);
    expect(human.stdout).toMatch(new RegExp(`GAP ${segment}: WAL segment ${segment} of timeline 1 is missing`));
  });
});
