import { z } from 'zod';
import { definePlugin } from '@strata/core/base';
import { FsBackend } from './FsBackend.js';

export const fsConfigSchema = z
  .object({
    /** Repository root directory; relative paths resolve against the config file's directory. */
    path: z.string().min(1, 'path must name the repository directory'),
    /** fsync files and directories before reporting an object stored (turn off only for tests). */
    fsync: z.boolean().default(true),
  })
  .strict();

export type FsConfig = z.output<typeof fsConfigSchema>;

export default definePlugin({
  name: 'fs',
  kind: 'storage',
  configSchema: fsConfigSchema,
  create: (config, context) => new FsBackend(config, context.configDir),
});

export { FsBackend };
