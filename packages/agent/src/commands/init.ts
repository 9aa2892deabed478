import { initCluster, type InitResult } from '@strata/core';
import { BaseCommand } from '../BaseCommand.js';
import { contextFlags, strataCommandPrefix } from '../self.js';

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Prepare the repository for a cluster and check its archiving settings.';
  static override description = `Records the cluster's system identifier and PostgreSQL version in the repository (idempotent: running it again is safe) and checks wal_level, archive_mode and archive_command, printing exactly what to set when something is missing.`;
  static override examples = ['<%= config.bin %> init', '<%= config.bin %> init --cluster main --json'];

  async run(): Promise<InitResult> {
    const { loaded, clusterName, cluster, repo } = await this.context();
    const archiveCommand = `${strataCommandPrefix()} archive-push ${contextFlags(loaded.path, clusterName)} %p`;
    const result = await initCluster(repo, clusterName, cluster, String(loaded.config.compression.plugin), archiveCommand);
    this.log(
      `Cluster "${clusterName}" (system ${result.systemIdentifier}, PostgreSQL ${result.pgVersionNum}) ${result.status === 'created' ? 'initialised in' : 'already initialised in'} ${repo.describe()}.`,
    );
    if (result.settingsToFix.length === 0) {
      this.log('Archiving settings are ready.');
    } else {
      for (const s of result.settingsToFix)
        this.warnUser(
          `${s.name} is ${JSON.stringify(s.current)}; set it to ${JSON.stringify(s.wanted)}${s.restart ? ' (needs a restart)' : ' (needs a reload)'}`,
        );
      this.log('\nSet these, e.g. in psql, then restart or reload PostgreSQL as noted:');
      for (const s of result.settingsToFix) this.log(`  ALTER SYSTEM SET ${s.name} = '${s.wanted.replace(/'/g, "''")}';`);
    }
    return result;
  }
}
