import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stopAllClusters } from './harness/postgres.js';
import { STRATA_BIN } from './harness/strata.js';
import { StrataCluster, restoreInto } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

/** Spawns `strata backup` in its own process group so SIGKILL reaches node, not just runuser. */
function spawnBackup(configPath: string) {
  const asRoot = process.getuid?.() === 0;
  const cmd = asRoot ? 'runuser' : process.execPath;
  const args = [
    ...(asRoot ? ['-u', 'postgres', '--', process.execPath] : []),
    STRATA_BIN,
    'backup',
    '--start-fast',
    '--config',
    configPath,
  ];
  const child = spawn(cmd, args, { detached: true, stdio: 'ignore' });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited };
}

function packsOf(repoDir: string): string[] {
  const root = path.join(repoDir, 'main', 'backup');
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root).flatMap((label) => {
    const dir = path.join(root, label, 'pack');
    return fs.existsSync(dir) ? fs.readdirSync(dir).map((p) => `${label}/${p}`) : [];
  });
}

describe('a backup killed mid-copy (PostgreSQL 15)', () => {
  it('leaves no visible backup, and the next backup succeeds and restores', async () => {
    // Small packs so that pack objects land early in the copy.
    const src = await StrataCluster.create({ version: 15, backup: { packSize: 1024 * 1024 } });
    await src.pg.query(`CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS v FROM generate_series(1, 1500000) g`);

    const { child, exited } = spawnBackup(src.configPath);
    const deadline = Date.now() + 60_000;
    while (packsOf(src.repoDir).length < 3) {
      if (Date.now() > deadline) throw new Error('backup wrote no packs within 60 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    process.kill(-child.pid!, 'SIGKILL');
    const { signal } = await exited;
    expect(signal).toBe('SIGKILL');
    const interruptedLabel = packsOf(src.repoDir)[0]!.split('/')[0]!;
    expect(fs.existsSync(path.join(src.repoDir, 'main', 'backup', interruptedLabel, 'manifest'))).toBe(false);

    const info = await src.strata(['info', '--json']);
    expect(info.code, info.stderr).toBe(0);
    const report = (info.json as { result: { backups: unknown[]; incomplete: string[] } }).result;
    expect(report.backups).toHaveLength(0);
    expect(report.incomplete).toEqual([interruptedLabel]);

    const label = await src.backup();
    expect(label).not.toBe(interruptedLabel);
    const after = (await src.strata(['info', '--json'])).json as { result: { backups: { label: string }[] } };
    expect(after.result.backups.map((b) => b.label)).toEqual([label]);

    // The surviving backup is whole: it restores and holds every row.
    await src.switchWalAndWait();
    const { result, pg } = await restoreInto(src, ['--target-immediate', '--target-action', 'promote']);
    expect(result.code, result.stderr).toBe(0);
    await pg.start({ waitForPromotion: true, timeoutMs: 120_000 });
    expect((await pg.query<{ n: string }>('SELECT count(*) AS n FROM big'))[0]!.n).toBe('1500000');
  });
});
