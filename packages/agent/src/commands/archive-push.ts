import { Args, Flags } from '@oclif/core';
import type { ArchivePushResult } from '@strata/core/base';
import { BaseCommand } from '../BaseCommand.js';
import { runArchivePush } from '../archive/push.js';

export default class ArchivePush extends BaseCommand<typeof ArchivePush> {
  static override summary = "Archive one WAL file (PostgreSQL's archive_command).";
  static override description = `Checksums, compresses and stores the file; exits 0 only once it is durably stored. Pushing identical bytes again succeeds; different bytes for an archived name fail (exit 4) and never overwrite. A non-zero exit makes PostgreSQL keep the file and retry, so no segment is lost. With archive.async in the config, a background pusher stores ready segments ahead in parallel and this command returns as soon as its segment is stored.`;
  static override examples = [`archive_command = '<%= config.bin %> archive-push %p'`];
  static override args = { path: Args.string({ required: true, description: 'path of the WAL file (%p)' }) };
  static override flags = {
    spool: Flags.string({
      description:
        'with archive.async: the spool directory bin/strata-archive-push answers from without starting Node; must be the one the config gives (the error says which)',
    }),
  };

  async run(): Promise<ArchivePushResult> {
    return runArchivePush(this.flags, this.args.path!, this.logger);
  }
}
