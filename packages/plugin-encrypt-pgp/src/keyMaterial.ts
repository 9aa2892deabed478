import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { StrataError } from '@strata/core/base';
import type { PrivateKey, PublicKey } from 'openpgp';
import { readSecret, type SecretSource } from './secrets.js';
import { loadOpenpgp } from './openpgp.js';

export interface KeyOptions {
  /** Recipients: armored public keys, or files holding them. */
  publicKeys: string[];
  /** Files with armored private keys (needed to restore, and to rotate). */
  privateKeys: string[];
  privateKeyPassphrase?: SecretSource;
  /** Symmetric mode: every data key is also wrapped with this passphrase. */
  passphrase?: SecretSource;
  /** Passphrases that may still open older keyring entries (for rotation); never used to wrap. */
  previousPassphrases: SecretSource[];
}

/** The label of a passphrase recipient in keyring entries. */
export const PASSPHRASE = 'passphrase';

export interface WrapMaterial {
  keys: PublicKey[];
  passwords: string[];
  /** Primary key fingerprints (lowercase hex), plus "passphrase": what a keyring entry lists. */
  recipients: string[];
}

export interface UnwrapMaterial {
  keys: PrivateKey[];
  passwords: string[];
  /** What this host can open: private key fingerprints, plus "passphrase". */
  held: string[];
}

/** Loads keys and secrets once, and only when needed: archive-push never reads a private key. */
export class KeyMaterial {
  private wrapP?: Promise<WrapMaterial>;
  private unwrapP?: Promise<UnwrapMaterial>;

  constructor(
    private readonly opts: KeyOptions,
    private readonly configDir: string,
  ) {}

  /** True when something that can decrypt is configured (a private key or a passphrase). */
  get canDecrypt(): boolean {
    return this.opts.privateKeys.length > 0 || this.opts.passphrase !== undefined || this.opts.previousPassphrases.length > 0;
  }

  forWrap(): Promise<WrapMaterial> {
    this.wrapP ??= this.loadWrap();
    return this.wrapP;
  }

  forUnwrap(): Promise<UnwrapMaterial> {
    this.unwrapP ??= this.loadUnwrap();
    return this.unwrapP;
  }

  private async loadWrap(): Promise<WrapMaterial> {
    const openpgp = await loadOpenpgp();
    const keys: PublicKey[] = [];
    for (const spec of this.opts.publicKeys) {
      const armored = spec.includes('-----BEGIN PGP') ? spec : await this.readKeyFile(spec, 'public key');
      let read: PublicKey[];
      try {
        read = (await openpgp.readKeys({ armoredKeys: armored })).map((k) => k.toPublic());
      } catch (err) {
        throw new StrataError('ConfigInvalid', `encryption.publicKeys: ${keyName(spec)} is not an OpenPGP public key`, {
          cause: err,
          hint: 'export it with "gpg --export --armor FINGERPRINT" (or openpgp) and point publicKeys at the file',
        });
      }
      for (const k of read) {
        try {
          await k.getEncryptionKey();
        } catch (err) {
          throw new StrataError(
            'ConfigInvalid',
            `encryption.publicKeys: key ${k.getFingerprint()} cannot encrypt (expired, revoked or signing-only)`,
            {
              cause: err,
              hint: 'use a key with a valid encryption subkey',
            },
          );
        }
      }
      keys.push(...read);
    }
    const passwords = this.opts.passphrase ? [await readSecret(this.opts.passphrase, 'encryption passphrase', this.configDir)] : [];
    return { keys, passwords, recipients: [...keys.map((k) => k.getFingerprint()), ...(passwords.length ? [PASSPHRASE] : [])] };
  }

  private async loadUnwrap(): Promise<UnwrapMaterial> {
    const openpgp = await loadOpenpgp();
    const keys: PrivateKey[] = [];
    let keyPassphrase: string | undefined;
    for (const file of this.opts.privateKeys) {
      const armored = await this.readKeyFile(file, 'private key');
      let read: PrivateKey[];
      try {
        read = await openpgp.readPrivateKeys({ armoredKeys: armored });
      } catch (err) {
        throw new StrataError('ConfigInvalid', `encryption.privateKeys: ${file} is not an OpenPGP private key`, {
          cause: new Error((err as Error).message.slice(0, 200)),
          hint: 'export it with "gpg --export-secret-keys --armor FINGERPRINT"',
        });
      }
      for (const k of read) {
        if (k.isDecrypted()) {
          keys.push(k);
          continue;
        }
        if (!this.opts.privateKeyPassphrase) {
          throw new StrataError(
            'ConfigInvalid',
            `encryption.privateKeys: key ${k.getFingerprint()} in ${file} is locked with a passphrase`,
            {
              hint: 'set encryption.privateKeyPassphrase to {file}, {env} or {command}',
            },
          );
        }
        keyPassphrase ??= await readSecret(this.opts.privateKeyPassphrase, 'private key passphrase', this.configDir);
        try {
          keys.push(await openpgp.decryptKey({ privateKey: k, passphrase: keyPassphrase }));
        } catch {
          throw new StrataError('ConfigInvalid', `encryption.privateKeyPassphrase does not unlock key ${k.getFingerprint()} in ${file}`, {
            hint: 'check the passphrase source named by encryption.privateKeyPassphrase',
          });
        }
      }
    }
    const passwords: string[] = [];
    if (this.opts.passphrase) passwords.push(await readSecret(this.opts.passphrase, 'encryption passphrase', this.configDir));
    for (const p of this.opts.previousPassphrases) passwords.push(await readSecret(p, 'previous encryption passphrase', this.configDir));
    return { keys, passwords, held: [...keys.map((k) => k.getFingerprint()), ...(passwords.length ? [PASSPHRASE] : [])] };
  }

  private async readKeyFile(file: string, what: string): Promise<string> {
    try {
      return await readFile(path.resolve(this.configDir, file), 'utf8');
    } catch (err) {
      throw new StrataError(
        'ConfigInvalid',
        `cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`,
        {
          hint: 'fix the path in the encryption settings (relative paths start at the config file)',
        },
      );
    }
  }
}

function keyName(spec: string): string {
  return spec.includes('-----BEGIN PGP') ? 'an inline key' : spec;
}
