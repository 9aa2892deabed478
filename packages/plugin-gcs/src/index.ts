import { access, constants } from 'node:fs/promises';
import * as path from 'node:path';
import { StrataError, definePlugin } from '@strata/core';
import { gcsConfigSchema } from './config.js';
import { GcsBackend } from './GcsBackend.js';

export default definePlugin({
  name: 'gcs',
  kind: 'storage',
  configSchema: gcsConfigSchema,
  create: async (config, context) => {
    if (config.keyFile !== undefined) {
      const keyFile = path.resolve(context.configDir, config.keyFile);
      // Fail at start-up with the path, not at the first request with a library message.
      await access(keyFile, constants.R_OK).catch((err: NodeJS.ErrnoException) => {
        throw new StrataError('ConfigInvalid', `gcs keyFile ${keyFile} cannot be read (${err.code ?? err.message})`, {
          operation: 'create',
          hint: 'point keyFile at a service-account JSON key readable by the user running strata, or remove it to use Application Default Credentials',
        });
      });
    }
    return new GcsBackend(config, context.configDir);
  },
});

export { GcsBackend, TAG_PREFIX } from './GcsBackend.js';
export { gcsConfigSchema, STORAGE_CLASSES, type GcsConfig } from './config.js';
export { mapGcsError } from './errors.js';
