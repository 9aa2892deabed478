import * as path from 'node:path';
import { StrataError, type EncryptionContext, type Encryptor, type RotateResult, type StorageBackend } from '@strata/core/base';
import { EncryptedBackend } from './EncryptedBackend.js';
import { KeyMaterial, PASSPHRASE, type KeyOptions } from './keyMaterial.js';
import { describeRecipients, unwrapDataKey, wrapDataKey } from './keyring.js';
import { KeyringStore } from './KeyringStore.js';
import { MetadataCache } from './MetadataCache.js';

/** Where a host without a private key keeps plaintext copies of the metadata it wrote. */
export function metadataCacheDir(stateDir: string, repoName: string): string {
  return path.join(stateDir, 'encryption-cache', repoName);
}

export class PgpEncryptor implements Encryptor {
  readonly material: KeyMaterial;

  constructor(options: KeyOptions, configDir: string) {
    this.material = new KeyMaterial(options, configDir);
  }

  wrap(backend: StorageBackend, context: EncryptionContext): StorageBackend {
    const cache = this.material.canDecrypt ? undefined : new MetadataCache(metadataCacheDir(context.stateDir, context.repoName));
    return new EncryptedBackend(backend, this.material, context, cache);
  }

  async assertCanDecrypt(): Promise<void> {
    if (this.material.canDecrypt) {
      await this.material.forUnwrap();
      return;
    }
    const { recipients } = await this.material.forWrap();
    throw new StrataError(
      'ConfigInvalid',
      `this host holds only public keys: reading the repository needs ${describeRecipients(recipients)}`,
      {
        hint: 'run the restore on a host that has the private key, or set encryption.privateKeys (or encryption.passphrase) in the config',
      },
    );
  }

  /**
   * Gives every data key whose newest keyring entry does not name exactly the configured
   * recipients a new entry wrapped for them. Data objects are never touched, and nothing is
   * replaced: a write-once repository only gains small objects.
   */
  async rotate(backend: StorageBackend, context: EncryptionContext, clusters: string[]): Promise<RotateResult> {
    const store = new KeyringStore(backend, this.material);
    const wrap = await this.material.forWrap();
    const wanted = [...wrap.recipients].sort().join(',');
    const unwrap = this.material.canDecrypt ? await this.material.forUnwrap() : undefined;
    const result: RotateResult = { dataKeys: 0, rewrapped: 0, unchanged: 0 };
    for (const cluster of clusters) {
      for (const [dataKeyId, entries] of await store.dataKeys(cluster)) {
        result.dataKeys++;
        const newest = await store.readEntry(entries[0]!);
        if (newest && newest.dataKeyId === dataKeyId && [...newest.recipients].sort().join(',') === wanted) {
          // A passphrase has no public identity: the entry is current only if today's passphrase opens it.
          const current =
            wrap.passwords.length === 0 || (await unwrapDataKey(newest, { keys: [], passwords: wrap.passwords, held: [PASSPHRASE] })).ok;
          if (current) {
            result.unchanged++;
            continue;
          }
        }
        if (!unwrap) await this.assertCanDecrypt();
        let key: Buffer | undefined;
        for (const entryKey of entries) {
          const entry = await store.readEntry(entryKey);
          if (!entry || entry.dataKeyId !== dataKeyId) continue;
          const outcome = await unwrapDataKey(entry, unwrap!);
          if (outcome.ok) {
            key = outcome.key;
            break;
          }
        }
        // Names the keys needed, or the damaged entries.
        key ??= await store.open(cluster, dataKeyId, entries[0]!, backend.describe());
        const body = await wrapDataKey(dataKeyId, key, wrap);
        key.fill(0);
        await store.writeBody(cluster, dataKeyId, body);
        result.rewrapped++;
        context.logger.debug({ repo: context.repoName, cluster, dataKey: dataKeyId }, 'data key re-wrapped');
      }
    }
    return result;
  }
}
