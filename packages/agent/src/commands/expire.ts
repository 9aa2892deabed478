import { Flags } from '@oclif/core';
import { runExpire, type ExpireResult, type RetentionPolicy } from '@strata/core';
import { BaseCommand } from '../BaseCommand.js';
import { fmtBytes } from './backup.js';

export default class Expire extends BaseCommand<typeof Expire> {
  static override summary = 'Remove backups and WAL beyond the retention policy, and interrupted backups.';
  static override description = `Applies the config's retention section (full: number of full backups to keep, fullDays: keep fulls newer than this many days, diff: number of differentials to keep). Incrementals and differentials go with their full; a backup another retained backup depends on is always kept. WAL older than the oldest retained backup's start is removed (timeline .history files are always kept), so point-in-time recovery from every retained backup still works. Interrupted backups are removed, except one that may still be running. With no retention configured, every backup and all WAL are kept. Each backup's manifest is deleted before its other objects, so it stops being visible at once.`;
  static override examples = [
    '<%= config.bin %> expire --dry-run   # show what would be removed',
    '<%= config.bin %> expire',
    '<%= config.bin %> expire --json',
  ];
  static override flags = {
    'dry-run': Flags.boolean({ default: false, description: 'report what would be removed, remove nothing' }),
  };

  async run(): Promise<ExpireResult> {
    const { loaded, clusterName, repo } = await this.context();
    const dryRun = this.flags['dry-run'];
    if (!dryRun) await this.lockCluster(loaded.config.stateDir, clusterName, 'expire');
    const result = await runExpire({ repo, cluster: clusterName, policy: loaded.config.retention, dryRun, logger: this.logger });
    const would = dryRun ? 'would remove' : 'removed';
    this.log(`Cluster ${clusterName} in ${repo.describe()}: retention ${describePolicy(result.policy)}${dryRun ? ' (dry run)' : ''}`);
    for (const n of result.notes) this.log(`  ${n}`);
    for (const b of result.expired)
      this.log(`  ${would} backup ${b.label} (${b.type}): ${b.reason}; ${b.objects} objects, ${fmtBytes(b.bytes)}`);
    for (const b of result.interrupted)
      this.log(`  ${would} interrupted backup ${b.label}: ${b.reason}; ${b.objects} objects, ${fmtBytes(b.bytes)}`);
    for (const b of result.inProgress) this.log(`  kept interrupted backup ${b.label}: ${b.reason}`);
    for (const w of result.wal) {
      const rest = w.keepFrom ? `kept from ${w.keepFrom}` : 'whole timeline; its .history file is kept';
      this.log(`  ${would} WAL timeline ${w.timeline}: ${w.first} .. ${w.last} (${w.count} files, ${fmtBytes(w.bytes)}; ${rest})`);
    }
    if (result.retained.length === 0) this.log('  no backups retained');
    for (const b of result.retained) this.log(`  kept backup ${b.label} (${b.type}): ${b.reason}`);
    this.log(
      `${dryRun ? 'Would delete' : 'Deleted'} ${result.objectsDeleted} objects, ${dryRun ? 'freeing' : 'freed'} ${fmtBytes(result.bytesFreed)}.`,
    );
    return result;
  }
}

function describePolicy(p: RetentionPolicy): string {
  const parts = [
    p.full !== undefined ? `full=${p.full}` : '',
    p.fullDays !== undefined ? `fullDays=${p.fullDays}` : '',
    p.diff !== undefined ? `diff=${p.diff}` : '',
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : 'not configured (keep everything)';
}
