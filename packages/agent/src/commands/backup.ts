import { Flags } from '@oclif/core';
import { ReplicatedRepository, parseRate, runBackup, type BackupResult } from '@strata/core';
import { BaseCommand } from '../BaseCommand.js';

export default class Backup extends BaseCommand<typeof Backup> {
  static override summary = 'Take an online physical backup of the cluster.';
  static override description = `Runs pg_backup_start/pg_backup_stop (non-exclusive), copies the data directory at page granularity into compressed packs with per-page and per-file checksums, waits until the WAL needed for consistency is archived, then writes the manifest — the commit point. An interrupted backup leaves no visible backup.`;
  static override examples = [
    '<%= config.bin %> backup --type full',
    '<%= config.bin %> backup --type full --start-fast --json',
    '<%= config.bin %> backup --type incr',
    '<%= config.bin %> backup   # incr on the newest backup, or full when there is none',
  ];
  static override flags = {
    type: Flags.option({
      options: ['full', 'incr', 'diff'] as const,
      description:
        'full; incr: pages changed since the newest backup; diff: since the newest full (default: incr when a usable full exists, else full)',
    })(),
    'start-fast': Flags.boolean({ default: false, description: 'request an immediate checkpoint instead of waiting for a spread one' }),
    'process-max': Flags.integer({
      min: 1,
      max: 64,
      description: 'worker threads reading, hashing and compressing (default: backup.processMax, else 2 or the cores when fewer)',
    }),
    'max-rate': Flags.string({
      description: 'limit reading PGDATA and writing to the repository to this many bytes/s each, e.g. 100MB (default: backup.maxRate)',
    }),
  };

  async run(): Promise<BackupResult & { missedBy: string[]; peakRssBytes: number }> {
    const maxRate = this.flags['max-rate'] === undefined ? undefined : parseRate(this.flags['max-rate']);
    const { loaded, clusterName, cluster, repo } = await this.context();
    await this.lockCluster(loaded.config.stateDir, clusterName, `backup --type ${this.flags.type ?? 'auto'}`);
    const progress = this.progress('backup');
    const result = await runBackup({
      repo,
      clusterName,
      cluster,
      config: loaded.config,
      type: this.flags.type ?? 'auto',
      startFast: this.flags['start-fast'],
      logger: this.logger,
      onCopyStart: (label) => this.logger.info({ label }, 'copying files'),
      processMax: this.flags['process-max'],
      maxRate,
      estimateTotal: progress.enabled,
      onProgress: (p) => progress.update(p.bytes, p.totalBytes),
    }).finally(() => progress.done());
    if (result.note) this.warnUser(result.note);
    const ratio = result.bytes > 0 ? ((result.repoBytes / result.bytes) * 100).toFixed(1) : '0';
    this.log(
      `Backup ${result.label} (${result.type}${result.parent ? ` on ${result.parent}` : ''}) complete: ${result.files} files, ${fmtBytes(result.bytes)} (${fmtBytes(result.bytesRead)} read) → ${fmtBytes(result.repoBytes)} stored (${ratio}%), WAL ${result.startWal}..${result.stopWal}, ${(result.durationMs / 1000).toFixed(1)} s.`,
    );
    // Copies that failed while the others took the backup (minCopies allowed it): replicate them.
    const missedBy = repo instanceof ReplicatedRepository ? repo.outages().map((o) => o.repo) : [];
    for (const o of repo instanceof ReplicatedRepository ? repo.outages() : [])
      this.warnUser(
        `repository "${o.repo}" missed this backup (${o.error.message}); "strata replicate" copies it once the repository is back`,
      );
    this.logger.debug({ memory: process.memoryUsage(), maxRssKiB: process.resourceUsage().maxRSS }, 'memory at the end of the backup');
    // maxRSS is in KiB: reported so operators (and the memory test) can see the footprint.
    return { ...result, missedBy, peakRssBytes: process.resourceUsage().maxRSS * 1024 };
  }
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
