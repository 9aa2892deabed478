import { Args } from '@oclif/core';
import { archivePush, type ArchivePushResult } from '@strata/core';
import { BaseCommand } from '../BaseCommand.js';

export default class ArchivePush extends BaseCommand<typeof ArchivePush> {
  static override summary = "Archive one WAL file (PostgreSQL's archive_command).";
  static override description = `Checksums, compresses and stores the file; exits 0 only once it is durably stored. Pushing identical bytes again succeeds; different bytes for an archived name fail (exit 4) and never overwrite. A non-zero exit makes PostgreSQL keep the file and retry, so no segment is lost.`;
  static override examples = [`archive_command = '<%= config.bin %> archive-push %p'`];
  static override args = { path: Args.string({ required: true, description: 'path of the WAL file (%p)' }) };

  async run(): Promise<ArchivePushResult> {
    const { loaded, clusterName, repo } = await this.context();
    const result = await archivePush({
      repo,
      cluster: clusterName,
      walPath: this.args.path!,
      compression: String(loaded.config.compression.plugin),
      logger: this.logger,
    });
    this.logger.info({ wal: result.walName, stored: result.storedBytes, again: result.alreadyArchived }, 'archived');
    return result;
  }
}
