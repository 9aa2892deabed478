import { clusterReport, type ClusterReport } from '@strata/core';
import { BaseCommand } from '../BaseCommand.js';
import { fmtBytes } from './backup.js';
import { describeRehearsal } from './restore-test.js';

export default class Info extends BaseCommand<typeof Info> {
  static override summary = 'List backups and the archived WAL range per timeline.';
  static override examples = ['<%= config.bin %> info', '<%= config.bin %> info --json'];

  async run(): Promise<ClusterReport> {
    const { clusterName, repo } = await this.context();
    const report = await clusterReport(repo, clusterName);
    this.log(`Cluster ${clusterName} in ${repo.describe()}`);
    if (report.backups.length === 0) this.log('  no backups');
    for (const b of report.backups) {
      this.log(
        `  ${b.label}  ${b.type.padEnd(4)}  ${b.startTime} → ${b.stopTime}  LSN ${b.startLsn} → ${b.stopLsn}  size ${fmtBytes(b.size)}, in repo ${fmtBytes(b.repoSize)}`,
      );
    }
    for (const w of report.wal)
      this.log(`  WAL timeline ${w.timeline}: ${w.first} .. ${w.last} (${w.segments} segments, ${fmtBytes(w.bytes)})`);
    if (report.incomplete.length) this.log(`  interrupted backups (not restorable, removed by expire): ${report.incomplete.join(', ')}`);
    if (report.lastRehearsal) for (const line of describeRehearsal(report.lastRehearsal).slice(0, 3)) this.log(`  ${line}`);
    else this.log('  no restore rehearsal yet (strata restore-test)');
    return report;
  }
}
