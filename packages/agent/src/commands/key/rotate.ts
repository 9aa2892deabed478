import { Flags } from '@oclif/core';
import { BaseCommand } from '../../BaseCommand.js';
import { selectCluster } from '../../config/loadConfig.js';
import { rotateKeys, type RotateReport } from '../../plugins/encryption.js';

export default class KeyRotate extends BaseCommand<typeof KeyRotate> {
  static override summary = 'Re-wrap every data key of an encrypted repository for the configured recipients.';
  static override description = `Every backup and WAL object is encrypted with a data key that is stored wrapped (OpenPGP) in small keyring objects. To move to a new key or passphrase: add the new public key (or set the new passphrase and list the old one under previousPassphrases) in the repository's encryption settings, keep a private key or passphrase that opens the existing entries, and run this command. It writes a new keyring entry per data key, wrapped for exactly the configured recipients; data objects are never read or rewritten, so it is quick and works on write-once (object-locked) repositories. Afterwards remove the old key from the config. Entries wrapped for the old key stay in the repository (they cannot be deleted from a write-once store): retire a compromised key by taking new full backups. Passphrases come from files, environment variables or commands named in the config, never from flags.`;
  static override examples = ['<%= config.bin %> key rotate', '<%= config.bin %> key rotate --repo offsite --json'];
  static override flags = {
    'all-clusters': Flags.boolean({
      default: false,
      description: 'rotate the keys of every configured cluster (default: --cluster, or the only one)',
    }),
  };

  async run(): Promise<RotateReport[]> {
    const loaded = await this.loadConfig();
    const clusters = this.flags['all-clusters']
      ? Object.keys(loaded.config.clusters)
      : [selectCluster(loaded.config, this.flags.cluster).name];
    const reports = await rotateKeys(loaded.config, loaded.path, loaded.dir, this.flags.repo, clusters, this.logger);
    for (const r of reports) {
      this.log(
        `Repository ${r.repo} (${r.clusters.join(', ')}): ${r.dataKeys} data keys, ${r.rewrapped} re-wrapped for the configured recipients, ${r.unchanged} already were.`,
      );
    }
    return reports;
  }
}
