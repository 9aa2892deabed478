import { Args } from '@oclif/core';
import * as path from 'node:path';
import { archiveGet, isStrataError, type WalObject } from '@strata/core';
import { BaseCommand } from '../BaseCommand.js';

/**
 * PostgreSQL treats an exit code above 125 from restore_command as fatal and stops recovery;
 * any lower code means "no such file" and ends recovery there. So only a file that is truly
 * absent exits 1: a damaged object or an unreachable repository must stop recovery, never
 * let PostgreSQL promote a cluster that is missing WAL.
 */
export const EXIT_NOT_ARCHIVED = 1;
export const EXIT_STOP_RECOVERY = 126;

export default class ArchiveGet extends BaseCommand<typeof ArchiveGet> {
  static override summary = "Fetch one WAL file from the repository (PostgreSQL's restore_command).";
  static override description = `Verifies the file's checksum and writes it atomically. Exits 1 quietly when the file is not archived (PostgreSQL probes for files that do not exist), and ${EXIT_STOP_RECOVERY} when the file exists but is damaged or the repository cannot be read, which makes PostgreSQL stop recovery instead of ending it early.`;
  static override examples = [`restore_command = '<%= config.bin %> archive-get %f "%p"'`];
  static override args = {
    walName: Args.string({ required: true, description: 'WAL file name (%f)' }),
    dest: Args.string({ required: true, description: 'where to write it (%p)' }),
  };

  async run(): Promise<WalObject> {
    const { clusterName, repo } = await this.context();
    return archiveGet(repo, clusterName, this.args.walName!, path.resolve(this.args.dest!));
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    const notArchived = isStrataError(err) && err.code === 'NotFound' && err.context.walName === this.args?.walName;
    if (notArchived) {
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
