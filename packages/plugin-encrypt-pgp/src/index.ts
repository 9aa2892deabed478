import { z } from 'zod';
import { definePlugin } from '@strata/core/base';
import { PgpEncryptor } from './PgpEncryptor.js';
import { secretSourceSchema } from './secrets.js';

export const pgpConfigSchema = z
  .object({
    /** Recipients: files with armored OpenPGP public keys (relative to the config file), or armored keys inline. */
    publicKeys: z.array(z.string().min(1)).default([]),
    /** Files with armored private keys: needed to restore, verify and rotate; leave out on database hosts. */
    privateKeys: z.array(z.string().min(1)).default([]),
    /** Unlocks passphrase-protected private keys: {file}, {env} or {command}. */
    privateKeyPassphrase: secretSourceSchema.optional(),
    /** Passphrase mode (alone or besides publicKeys): {file}, {env} or {command}; never inline. */
    passphrase: secretSourceSchema.optional(),
    /** Passphrases that opened older keyring entries, for "strata key rotate"; never used to encrypt. */
    previousPassphrases: z.array(secretSourceSchema).default([]),
  })
  .strict()
  .refine((c) => c.publicKeys.length > 0 || c.passphrase !== undefined, {
    message: 'set publicKeys (recipients) or passphrase: data keys must be wrapped for someone',
  });

export type PgpConfig = z.output<typeof pgpConfigSchema>;

export default definePlugin({
  name: 'encrypt-pgp',
  kind: 'encryption',
  configSchema: pgpConfigSchema,
  create: (config, context) => new PgpEncryptor(config, context.configDir),
});

export { PgpEncryptor, metadataCacheDir } from './PgpEncryptor.js';
export { EncryptedBackend } from './EncryptedBackend.js';
export { KeyMaterial, type KeyOptions } from './keyMaterial.js';
