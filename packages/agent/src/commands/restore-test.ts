import { Flags } from '@oclif/core';
import { EXIT_CODES, assertLabel, runRehearsal, type RehearsalResult } from '@strata/core';
import { BaseCommand } from '../BaseCommand.js';
import { assertCanDecrypt } from '../plugins/encryption.js';
import { contextFlags, strataCommandPrefix } from '../self.js';

export default class RestoreTest extends BaseCommand<typeof RestoreTest> {
  static override summary = 'Rehearse a restore: recover the newest backup with all archived WAL into a scratch cluster and check it.';
  static override description = `Restores the chosen backup (default: the newest) into a scratch directory, checks that the archive has every WAL segment from the backup on, starts PostgreSQL on a free loopback port with archiving off, waits for recovery to replay all archived WAL and promote, then checks the cluster: pg_is_in_recovery() is false, recovery reached the newest archived segment, pg_amcheck (when installed), the SQL checks of clusters.<name>.rehearsal.checks, and exact row counts of the largest tables. Reports RTO (seconds until the promoted cluster answered) and RPO (seconds between reading the archive and the last transaction recovered). Stops and removes the scratch cluster, also on failure or Ctrl-C, and stores the result in the repository, where info, status and the agent's metrics show it. Exits ${EXIT_CODES.Integrity} when the rehearsal fails.`;
  static override examples = ['<%= config.bin %> restore-test', '<%= config.bin %> restore-test --set 20261122-020000F --json'];
  static override flags = {
    set: Flags.string({ description: 'backup label to rehearse (default: the newest)' }),
  };

  async run(): Promise<RehearsalResult & { key?: string }> {
    if (this.flags.set !== undefined) assertLabel(this.flags.set);
    const { loaded, clusterName, cluster, repo } = await this.context();
    await assertCanDecrypt(loaded.config, loaded.path, loaded.dir, this.flags.repo, this.logger);
    this.gracefulAbort = true;
    await this.lockCluster(loaded.config.stateDir, clusterName, 'restore-test');
    const progress = this.progress('restore-test');
    let phase = '';
    // Recovery and checks have no byte count: the line shows the phase and the time it has run.
    const ticker = setInterval(() => phase && progress.phase(phase), 1000);
    const result = await runRehearsal({
      repo,
      clusterName,
      cluster,
      compression: loaded.config.compression.plugin,
      label: this.flags.set,
      restoreCommand: `${strataCommandPrefix()} archive-get ${contextFlags(loaded.path, clusterName)} %f "%p"`,
      logger: this.logger,
      signal: this.abortController.signal,
      onProgress: (p) => {
        if (p.phase === 'restore') return progress.update(p.bytes ?? 0, p.totalBytes);
        phase = p.phase === 'recovery' ? 'replaying WAL until promotion' : 'running checks';
        progress.phase(phase);
      },
    }).finally(() => {
      clearInterval(ticker);
      progress.done();
    });
    for (const line of describeRehearsal(result)) this.log(line);
    if (!result.passed) process.exitCode = this.abortController.signal.aborted ? EXIT_CODES.Aborted : EXIT_CODES.Integrity;
    return result;
  }
}

export function describeRehearsal(r: RehearsalResult): string[] {
  const lines = [
    `Restore rehearsal of cluster ${r.cluster} from ${r.label ? `backup ${r.label}` : 'no backup'}: ${r.passed ? 'PASSED' : 'FAILED'} in ${r.durationSeconds.toFixed(1)} s.`,
  ];
  if (r.rtoSeconds !== undefined) lines.push(`  RTO ${r.rtoSeconds.toFixed(1)} s (start to accepting queries after promotion)`);
  if (r.rpoSeconds !== undefined)
    lines.push(`  RPO ${r.rpoSeconds.toFixed(1)} s (recovered to ${r.recoveredTo}; newest segment ${r.newestSegment ?? '-'})`);
  for (const c of r.checks) lines.push(`  ${c.skipped ? 'SKIP' : c.passed ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
  for (const t of r.tables) lines.push(`  rows ${t.name}: ${t.rows}`);
  if (r.error) lines.push(`  error: ${r.error}`);
  return lines;
}
