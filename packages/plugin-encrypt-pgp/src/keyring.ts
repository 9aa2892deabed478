import { randomBytes } from 'node:crypto';
import { StrataError } from '@strata/core/base';
import { PASSPHRASE, type UnwrapMaterial, type WrapMaterial } from './keyMaterial.js';
import { loadOpenpgp } from './openpgp.js';

/**
 * Keyring objects: one data key wrapped with OpenPGP for a set of recipients, written once at
 *
 *   <cluster>/keyring/<data key id>/<YYYYMMDDTHHMMSSmmm>-<random>
 *
 * A clear first line names the format, a JSON line names the data key and its recipients (so an
 * error can say which key is needed), then the binary OpenPGP message (SEIPDv2/AEAD where the
 * recipients allow it) holding {v, dataKey, key}. Rotation adds entries; it never edits one.
 */
const KEYRING_MAGIC = 'STRATA-KEYRING 1';
export const KEYRING_RE = /^([^/]+)\/keyring\/([0-9a-f]{32})\/(\d{8}T\d{9}-[0-9a-f]{8})$/;

export function keyringPrefix(cluster: string, dataKeyId?: string): string {
  return dataKeyId ? `${cluster}/keyring/${dataKeyId}/` : `${cluster}/keyring/`;
}

export function keyringKey(cluster: string, dataKeyId: string, at = new Date()): string {
  const iso = at.toISOString().replace(/[-:.Z]/g, '');
  return `${keyringPrefix(cluster, dataKeyId)}${iso}-${randomBytes(4).toString('hex')}`;
}

export interface KeyringEntry {
  dataKeyId: string;
  created: string;
  /** Primary key fingerprints (lowercase hex) and/or "passphrase". */
  recipients: string[];
  message: Buffer;
}

export async function wrapDataKey(dataKeyId: string, key: Buffer, material: WrapMaterial): Promise<Buffer> {
  const openpgp = await loadOpenpgp();
  if (material.keys.length === 0 && material.passwords.length === 0) {
    throw new StrataError('ConfigInvalid', 'encryption has no recipients: set encryption.publicKeys or encryption.passphrase');
  }
  const inner = Buffer.from(JSON.stringify({ v: 1, dataKey: dataKeyId, key: key.toString('base64') }));
  // openpgp's result types depend on its web-stream types; with a Uint8Array message they are Uint8Array.
  const message = (await openpgp.encrypt({
    message: await openpgp.createMessage({ binary: new Uint8Array(inner) }),
    encryptionKeys: material.keys.length ? material.keys : undefined,
    passwords: material.passwords.length ? material.passwords : undefined,
    format: 'binary',
    // SEIPDv2 (AEAD) for keys alone or a passphrase alone. Mixed, openpgp 6 writes a v6 SKESK the
    // passphrase cannot open next to v4 keys' packets (verified), so those entries use SEIPDv1 with
    // its MDC, which for a 100-byte message costs nothing and is still authenticated.
    config: {
      aeadProtect: !(material.keys.length > 0 && material.passwords.length > 0),
      preferredAEADAlgorithm: openpgp.enums.aead.gcm,
    },
  })) as Uint8Array;
  inner.fill(0);
  const meta = JSON.stringify({ dataKey: dataKeyId, created: new Date().toISOString(), recipients: material.recipients });
  return Buffer.concat([Buffer.from(`${KEYRING_MAGIC}\n${meta}\n`), Buffer.from(message)]);
}

/** Parses a keyring object; undefined when it is not one (damaged). */
export function parseKeyringEntry(raw: Buffer): KeyringEntry | undefined {
  const nl1 = raw.indexOf(0x0a);
  if (nl1 < 0 || raw.subarray(0, nl1).toString('latin1') !== KEYRING_MAGIC) return undefined;
  const nl2 = raw.indexOf(0x0a, nl1 + 1);
  if (nl2 < 0) return undefined;
  try {
    const meta = JSON.parse(raw.subarray(nl1 + 1, nl2).toString('utf8')) as { dataKey?: unknown; created?: unknown; recipients?: unknown };
    if (typeof meta.dataKey !== 'string' || !Array.isArray(meta.recipients)) return undefined;
    return {
      dataKeyId: meta.dataKey,
      created: typeof meta.created === 'string' ? meta.created : '',
      recipients: meta.recipients.map(String),
      message: raw.subarray(nl2 + 1),
    };
  } catch {
    return undefined;
  }
}

export type UnwrapOutcome =
  | { ok: true; key: Buffer }
  /** Nothing this host holds is among the entry's recipients. */
  | { ok: false; reason: 'no-key' }
  /** A held key is a recipient, yet the message does not open: the entry is damaged (or the passphrase wrong). */
  | { ok: false; reason: 'failed'; detail: string };

export async function unwrapDataKey(entry: KeyringEntry, material: UnwrapMaterial): Promise<UnwrapOutcome> {
  const matching = entry.recipients.filter((r) => material.held.includes(r));
  // openpgp tries only the passwords when both are given: keys and passwords are separate attempts.
  const attempts: { decryptionKeys?: typeof material.keys; passwords?: string[] }[] = [];
  if (material.keys.length) attempts.push({ decryptionKeys: material.keys });
  if (material.passwords.length) attempts.push({ passwords: material.passwords });
  if (attempts.length === 0) return { ok: false, reason: 'no-key' };
  const openpgp = await loadOpenpgp();
  for (const attempt of attempts) {
    let data: Uint8Array;
    try {
      const message = await openpgp.readMessage({ binaryMessage: new Uint8Array(entry.message) });
      ({ data } = (await openpgp.decrypt({ message, ...attempt, format: 'binary' })) as { data: Uint8Array });
    } catch {
      // openpgp's message may describe key material; only the verdict is kept.
      continue;
    }
    let inner: { v?: number; dataKey?: string; key?: string };
    try {
      inner = JSON.parse(Buffer.from(data).toString('utf8')) as typeof inner;
    } catch {
      return { ok: false, reason: 'failed', detail: 'it does not hold a data key' };
    }
    if (inner.v !== 1 || inner.dataKey !== entry.dataKeyId || typeof inner.key !== 'string') {
      return { ok: false, reason: 'failed', detail: 'it holds another data key' };
    }
    const key = Buffer.from(inner.key, 'base64');
    if (key.length !== 32) return { ok: false, reason: 'failed', detail: 'its data key has the wrong length' };
    return { ok: true, key };
  }
  if (matching.length === 0) return { ok: false, reason: 'no-key' };
  return {
    ok: false,
    reason: 'failed',
    detail: matching.includes(PASSPHRASE) && matching.length === 1 ? 'the passphrase does not open it' : 'it does not decrypt',
  };
}

/** "key ABCD… or the passphrase", for messages. */
export function describeRecipients(recipients: string[]): string {
  const keys = recipients.filter((r) => r !== PASSPHRASE).map((r) => r.toUpperCase());
  const parts = [];
  if (keys.length) parts.push(`the private key ${keys.length > 1 ? 'of one of ' : 'with fingerprint '}${keys.join(', ')}`);
  if (recipients.includes(PASSPHRASE)) parts.push('the repository passphrase');
  return parts.join(' or ') || 'a key nobody holds';
}
