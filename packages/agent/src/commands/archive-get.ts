import { Args } from '@oclif/core';
import type { WalObject } from '@strata/core/base';
import { BaseCommand } from '../BaseCommand.js';
import { runArchiveGet } from '../archive/get.js';
import { EXIT_NOT_ARCHIVED, EXIT_STOP_RECOVERY, isNotArchived } from '../archive/recoveryExit.js';

export default class ArchiveGet extends BaseCommand<typeof ArchiveGet> {
  static override summary = "Fetch one WAL file from the repository (PostgreSQL's restore_command).";
  static override description = `Verifies the file's checksum and writes it atomically. Exits 1 quietly when the file is not archived (PostgreSQL probes for files that do not exist), and ${EXIT_STOP_RECOVERY} when the file exists but is damaged or the repository cannot be read, which makes PostgreSQL stop recovery instead of ending it early.`;
  static override examples = [`restore_command = '<%= config.bin %> archive-get %f "%p"'`];
  static override args = {
    walName: Args.string({ required: true, description: 'WAL file name (%f)' }),
    dest: Args.string({ required: true, description: 'where to write it (%p)' }),
  };

  async run(): Promise<WalObject> {
    return runArchiveGet(this.flags, this.args.walName!, this.args.dest!, this.logger);
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    if (isNotArchived(err, this.args?.walName)) {
      // The common case during recovery: say nothing unless asked.
      process.exitCode = EXIT_NOT_ARCHIVED;
      if (this.jsonEnabled()) this.logJson(this.toErrorJson(err));
      else this.logger.debug({ wal: this.args.walName }, 'not archived');
      return undefined;
    }
    await super.catch(err);
    process.exitCode = EXIT_STOP_RECOVERY;
    return undefined;
  }
}
