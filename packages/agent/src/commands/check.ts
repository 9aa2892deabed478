import { Flags } from '@oclif/core';
import { EXIT_CODES, runCheck, type CheckReport } from '@strata/core';
import { BaseCommand } from '../BaseCommand.js';
import { loadClusterContext, openCopiesFor } from '../cli/context.js';
import { missQueue } from '../plugins/loadPlugins.js';

export default class Check extends BaseCommand<typeof Check> {
  static override summary = 'Check the 3-2-1 rule, each repository copy, archiving and backup freshness.';
  static override description = `Reads every configured repository (not the config alone) and reports, for the cluster: the 3-2-1 verdict (the live cluster plus each repository holding every backup and WAL file the others hold; kinds of media; offsite copies), each repository's lag (backups and WAL files it misses; fix with "strata replicate"), archiving health (forces a WAL switch and waits for that segment in every repository), WAL files waiting in pg_wal, and the age of the newest backup. Exits ${EXIT_CODES.Precondition} when any check fails.`;
  static override examples = ['<%= config.bin %> check', '<%= config.bin %> check --json', '<%= config.bin %> check --no-archive-check'];
  static override flags = {
    'archive-check': Flags.boolean({
      description: 'force a WAL switch and wait for the segment in every repository',
      default: true,
      allowNo: true,
    }),
    'max-backup-age': Flags.integer({
      description: 'hours the newest backup may be old (default: config check.maxBackupAgeHours)',
      min: 1,
    }),
  };

  async run(): Promise<CheckReport> {
    const ctx = await loadClusterContext(this.flags);
    const { config } = ctx.loaded;
    const copies = await openCopiesFor(ctx, this.flags, this.logger);
    const report = await runCheck({
      clusterName: ctx.clusterName,
      cluster: ctx.cluster,
      config,
      copies,
      queue: await missQueue(config),
      archiveCheck: this.flags['archive-check'],
      maxBackupAgeHours: this.flags['max-backup-age'],
    });
    this.log(
      `Cluster ${report.cluster}: 3-2-1 ${report.rule321 ? 'met' : 'NOT met'} — ${report.copies} copies, ${report.mediaKinds.length} kinds of media (${report.mediaKinds.join(', ')}), ${report.offsiteCopies} offsite`,
    );
    for (const r of report.repositories) {
      const where = `${r.media ?? 'unknown media'}, ${r.site ?? 'unknown site'}`;
      if (!r.reachable) this.log(`  ${r.repo} (${where}): UNREACHABLE — ${r.error}`);
      else
        this.log(
          `  ${r.repo} (${where}): ${r.backups} backups, ${r.walFiles} WAL files${r.level ? ', level' : `, LAGS by ${r.lag.backups} backup(s) and ${r.lag.walFiles} WAL file(s)`}${r.queued ? `, ${r.queued} queued` : ''}`,
        );
    }
    if (report.newestBackup) this.log(`  newest backup ${report.newestBackup.label}, ${report.newestBackup.ageHours} h old`);
    if (report.archive.checked)
      this.log(
        report.archive.ok
          ? `  archiving: ${report.archive.segment} reached every repository in ${report.archive.seconds} s`
          : `  archiving: FAILED`,
      );
    if (report.pgWal) this.log(`  pg_wal: ${report.pgWal.readyFiles} files waiting to be archived`);
    if (report.ok) this.log('All checks passed.');
    else {
      process.exitCode = EXIT_CODES.Precondition;
      this.log(`${report.problems.length} problem(s):`);
      for (const p of report.problems) this.log(`  ${p}`);
    }
    return report;
  }
}
