import { StrataError, TAG, type StorageBackend, type Tags } from '@strata/core/base';
import type { KeyMaterial } from './keyMaterial.js';
import {
  KEYRING_RE,
  describeRecipients,
  keyringKey,
  keyringPrefix,
  parseKeyringEntry,
  unwrapDataKey,
  wrapDataKey,
  type KeyringEntry,
} from './keyring.js';
import { readAll } from './streams.js';

/** Reads and writes keyring objects in the (undecorated) storage backend. */
export class KeyringStore {
  constructor(
    private readonly inner: StorageBackend,
    private readonly material: KeyMaterial,
  ) {}

  /** Keys of the data key's keyring entries, newest first. */
  async entryKeys(cluster: string, dataKeyId: string): Promise<string[]> {
    const out: string[] = [];
    for await (const o of this.inner.list(keyringPrefix(cluster, dataKeyId))) if (KEYRING_RE.test(o.key)) out.push(o.key);
    return out.sort().reverse();
  }

  /** Every data key of a cluster with its entries' keys, newest first. */
  async dataKeys(cluster: string): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for await (const o of this.inner.list(keyringPrefix(cluster))) {
      const m = KEYRING_RE.exec(o.key);
      if (!m || m[1] !== cluster) continue;
      out.set(m[2]!, [...(out.get(m[2]!) ?? []), o.key]);
    }
    for (const list of out.values()) list.sort().reverse();
    return out;
  }

  async readEntry(key: string): Promise<KeyringEntry | undefined> {
    return parseKeyringEntry(await readAll(await this.inner.get(key)));
  }

  /** Wraps a data key for the configured recipients and stores a new entry (create-if-absent). */
  async write(cluster: string, dataKeyId: string, key: Buffer, tags?: Tags): Promise<string> {
    return this.writeBody(cluster, dataKeyId, await wrapDataKey(dataKeyId, key, await this.material.forWrap()), tags);
  }

  async writeBody(cluster: string, dataKeyId: string, body: Buffer, tags?: Tags): Promise<string> {
    const entryKey = keyringKey(cluster, dataKeyId);
    let entryTags: Tags | undefined;
    if (tags) {
      entryTags = { ...tags, [TAG.kind]: 'keyring' };
      delete entryTags[TAG.backup];
    }
    await this.inner.put(entryKey, body, { ifNoneMatch: true, tags: entryTags });
    return entryKey;
  }

  /**
   * The data key, from any of its entries this host can open. `objectKey` names what was being
   * read in errors: a missing or damaged entry is an Integrity error, a key this host does not
   * hold is ConfigInvalid naming the fingerprints that would open it.
   */
  async open(cluster: string, dataKeyId: string, objectKey: string, where: string): Promise<Buffer> {
    const entries = await this.entryKeys(cluster, dataKeyId);
    if (entries.length === 0) {
      throw new StrataError(
        'Integrity',
        `object "${objectKey}" in ${where} is corrupt: its header names data key ${dataKeyId}, which has no keyring entry under ${keyringPrefix(cluster)}`,
        {
          operation: 'read',
          context: { key: objectKey },
          hint: 'the header is damaged or the keyring object was deleted; restore from another copy of the repository',
        },
      );
    }
    const material = this.material.canDecrypt ? await this.material.forUnwrap() : { keys: [], passwords: [], held: [] };
    const recipients = new Set<string>();
    const failures: string[] = [];
    for (const entryKey of entries) {
      const entry = await this.readEntry(entryKey);
      if (!entry || entry.dataKeyId !== dataKeyId) {
        failures.push(`keyring object "${entryKey}" is damaged`);
        continue;
      }
      const outcome = await unwrapDataKey(entry, material);
      if (outcome.ok) return outcome.key;
      for (const r of entry.recipients) recipients.add(r);
      if (outcome.reason === 'failed') failures.push(`keyring object "${entryKey}": ${outcome.detail}`);
    }
    const needs = describeRecipients([...recipients]);
    const holds = material.held.length
      ? `this host holds ${describeRecipients(material.held)}`
      : 'this host holds no private key or passphrase (public keys only)';
    if (failures.length > 0 && !failures.every((f) => f.endsWith('the passphrase does not open it'))) {
      throw new StrataError('Integrity', `object "${objectKey}" in ${where} cannot be decrypted: ${failures.join('; ')}`, {
        operation: 'read',
        context: { key: objectKey, dataKey: dataKeyId },
        hint: 'restore from another copy of the repository, or rotate keys from a host whose keyring objects are intact',
      });
    }
    throw new StrataError('ConfigInvalid', `cannot decrypt "${objectKey}" in ${where}: it needs ${needs}; ${holds}`, {
      operation: 'read',
      context: { key: objectKey, dataKey: dataKeyId },
      hint: 'set encryption.privateKeys (and privateKeyPassphrase) or encryption.passphrase in the config to a key that opens it',
    });
  }
}
