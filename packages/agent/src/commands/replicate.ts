import { Flags } from '@oclif/core';
import { EXIT_CODES, StrataError, replicate, type ReplicateResult } from '@strata/core';
import { BaseCommand } from '../BaseCommand.js';
import { loadClusterContext } from '../cli/context.js';
import { missQueue, openCopies } from '../plugins/loadPlugins.js';
import { fmtBytes } from './backup.js';

export default class Replicate extends BaseCommand<typeof Replicate> {
  static override summary = 'Copy what a lagging repository misses from the others.';
  static override description = `For each target repository (--to, default: every configured one), copies the cluster's backups, WAL files and rehearsal results that the other repositories (--from, default: all others, in config order) hold and it lacks. Every object is checked on the way (metadata and WAL checksums, each pack against its manifest's checksum); a damaged source copy falls back to the next. A backup becomes visible on the target only once all its objects are there (its manifest last), so an interrupted run is simply run again. Exits ${EXIT_CODES.Integrity} when an object could not be copied intact from any source.`;
  static override examples = ['<%= config.bin %> replicate', '<%= config.bin %> replicate --from local --to offsite-s3 --json'];
  static override flags = {
    from: Flags.string({ description: 'read from this repository only', multiple: true }),
    to: Flags.string({ description: 'bring this repository level (default: every one)', multiple: true }),
  };

  async run(): Promise<{ targets: ReplicateResult[] }> {
    if (this.flags.repo !== undefined)
      throw new StrataError('InvalidArgument', 'replicate works across repositories: use --from/--to instead of --repo');
    const ctx = await loadClusterContext(this.flags);
    const { config } = ctx.loaded;
    const copies = await openCopies(config, ctx.loaded.path, ctx.loaded.dir, this.logger);
    const byName = (names: string[] | undefined) =>
      names?.map((n) => {
        const c = copies.find((r) => r.name === n);
        if (!c)
          throw new StrataError(
            'InvalidArgument',
            `no repository "${n}" in the config; configured: ${copies.map((r) => r.name).join(', ')}`,
          );
        return c;
      });
    const from = byName(this.flags.from);
    const targets = byName(this.flags.to) ?? copies;
    await this.lockCluster(config.stateDir, ctx.clusterName, 'replicate');
    const queue = await missQueue(config);
    const results: ReplicateResult[] = [];
    for (const target of targets) {
      const sources = (from ?? copies).filter((c) => c !== target);
      if (sources.length === 0) continue;
      let r: ReplicateResult;
      try {
        r = await replicate({ cluster: ctx.clusterName, sources, target, queue, logger: this.logger });
      } catch (err) {
        // One unreachable target does not keep the others lagging.
        if (targets.length === 1) throw err;
        this.warnUser(`${target.name}: ${(err as Error).message}`);
        process.exitCode = EXIT_CODES.Unavailable;
        continue;
      }
      results.push(r);
      this.log(
        r.copied === 0 && r.level
          ? `${target.name}: level, nothing to copy`
          : `${target.name}: copied ${r.copied} objects (${fmtBytes(r.bytes)}): ${r.backups.length} backup(s), ${r.wal} WAL file(s)${r.level ? '' : `; ${r.failed.length} could not be copied`}`,
      );
      for (const f of r.failed) this.log(`  FAILED ${f.key}: ${f.reason}`);
    }
    if (results.some((r) => !r.level)) process.exitCode ??= EXIT_CODES.Integrity;
    return { targets: results };
  }
}
