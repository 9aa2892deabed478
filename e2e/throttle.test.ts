import { afterAll, describe, expect, it } from 'vitest';
import { stopAllClusters } from './harness/postgres.js';
import { StrataCluster, restoreInto } from './scenarios/strataCluster.js';

afterAll(() => stopAllClusters(), 120_000);

interface BackupJson {
  result: { bytesRead: number; durationMs: number; label: string };
}
interface RestoreJson {
  result: { bytes: number; durationMs: number };
}

/** --max-rate paces a backup's reads and a restore's writes; output to a pipe carries no progress line. */
describe('--max-rate (PostgreSQL 15)', () => {
  it(
    'a throttled backup and restore take at least size / rate, and print no progress when stderr is not a TTY',
    { timeout: 600_000 },
    async () => {
      const src = await StrataCluster.create({ version: 15 });
      await src.pg.pgbench(['-i', '-s', '2', '-q', 'postgres'], { timeoutMs: 300_000 });
      await src.pg.query('CHECKPOINT');
      const rate = 10_000_000;

      const backup = await src.strata(['backup', '--type', 'full', '--start-fast', '--max-rate', '10MB', '--json']);
      expect(backup.code, backup.stderr + backup.stdout).toBe(0);
      const b = (backup.json as BackupJson).result;
      expect(b.bytesRead).toBeGreaterThan(30 * 2 ** 20);
      expect(b.durationMs).toBeGreaterThanOrEqual((b.bytesRead / rate) * 1000);
      expect(backup.stderr).not.toMatch(/\r|ETA|MiB\/s/);
      await src.switchWalAndWait();

      // Without --json too: human output to a pipe has no progress line.
      const plain = await src.strata(['backup', '--type', 'incr', '--start-fast']);
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.stderr).not.toMatch(/\r|ETA|MiB\/s/);

      const restored = await restoreInto(src, ['--set', b.label, '--target-immediate', '--max-rate', '10MB']);
      expect(restored.result.code, restored.result.stderr + restored.result.stdout).toBe(0);
      const r = (restored.result.json as RestoreJson).result;
      // pg_control (8 KiB) is written after the paced files.
      expect(r.durationMs).toBeGreaterThanOrEqual(((r.bytes - 8192) / rate) * 1000);
      expect(restored.result.stderr).not.toMatch(/\r|ETA|MiB\/s/);

      const bad = await src.strata(['backup', '--max-rate', 'fast']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/"fast" is not a rate/);
    },
  );
});
