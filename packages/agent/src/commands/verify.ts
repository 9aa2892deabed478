import { Flags } from '@oclif/core';
import { EXIT_CODES, assertLabel, verifyRepository, type VerifyResult } from '@strata/core';
import { BaseCommand } from '../BaseCommand.js';
import { loadClusterContext, openCopiesFor } from '../cli/context.js';
import { fmtBytes } from './backup.js';

export default class Verify extends BaseCommand<typeof Verify> {
  static override summary = 'Read every object of the repository and check every checksum.';
  static override description = `Checks manifests and block maps, every frame each backup stored (page digests and file checksums), every archived WAL file, and that no WAL segment is missing on any timeline from the oldest backup's start to the newest segment. With --set, checks one backup, the backups it depends on, and the WAL it can replay. Exits ${EXIT_CODES.Integrity} when anything is missing or damaged, naming each object.`;
  static override examples = ['<%= config.bin %> verify', '<%= config.bin %> verify --set 20261122-020000F --json'];
  static override flags = {
    set: Flags.string({ description: 'verify this backup and the chain it depends on (default: everything)' }),
  };

  async run(): Promise<VerifyResult | { ok: boolean; repositories: (VerifyResult & { repo: string })[] }> {
    if (this.flags.set !== undefined) assertLabel(this.flags.set);
    const ctx = await loadClusterContext(this.flags);
    const { clusterName } = ctx;
    // Each repository on its own: a damaged copy must not hide behind a healthy one.
    const copies = await openCopiesFor(ctx, this.flags, this.logger);
    await this.lockCluster(ctx.loaded.config.stateDir, clusterName, 'verify');
    const results: (VerifyResult & { repo: string })[] = [];
    for (const repo of copies) {
      const result = await verifyRepository(repo, clusterName, { label: this.flags.set, logger: this.logger });
      results.push({ ...result, repo: repo.name });
      this.log(
        `Verified ${result.backups.length} backup(s) and ${result.objectsChecked} objects (${fmtBytes(result.bytesChecked)}) in ${repo.describe()}.`,
      );
      for (const w of result.wal)
        this.log(
          `  WAL timeline ${w.timeline}: ${w.first} .. ${w.last}, ${w.segments} segments${w.missing.length ? `, ${w.missing.length} missing` : ''}`,
        );
      if (result.ok) this.log('  No problems found.');
      else {
        this.log(`  ${result.problems.length} problem(s):`);
        for (const p of result.problems)
          this.log(`  ${p.kind.toUpperCase()} ${p.object}${p.backup ? ` (backup ${p.backup})` : ''}: ${p.detail}`);
      }
    }
    const ok = results.every((r) => r.ok);
    if (!ok) process.exitCode = EXIT_CODES.Integrity;
    // One repository: its report as is (the shape scripts already read).
    if (results.length === 1) return results[0]!;
    return { ok, repositories: results };
  }
}
