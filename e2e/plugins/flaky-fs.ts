import * as fs from 'node:fs';
import { z } from 'zod';
import { definePlugin } from '@strata/core';
import { chaosBackend } from '@strata/core/testing/chaos';
import fsPlugin from '@strata/plugin-fs';

/**
 * A test storage plugin: the fs repository behind the chaos wrapper, so e2e tests can make the
 * real `strata` binary (and PostgreSQL's archive_command) meet transient or permanent storage
 * faults. Each injected fault is appended to `faultLog`, so tests can tell faults really happened.
 */
const schema = z
  .object({
    path: z.string(),
    failEvery: z.number().int().min(1),
    operations: z.array(z.enum(['put', 'get', 'head', 'list', 'delete'])).optional(),
    code: z.enum(['Unavailable', 'PermissionDenied']).default('Unavailable'),
    faultLog: z.string(),
  })
  .strict();

export default definePlugin({
  name: 'flaky-fs',
  kind: 'storage',
  configSchema: schema,
  create: async (config, context) => {
    const inner = await fsPlugin.create({ path: config.path, fsync: false }, context);
    return chaosBackend(inner, {
      failEvery: config.failEvery,
      code: config.code,
      retryable: config.code === 'Unavailable',
      onFault: (op, key) => fs.appendFileSync(config.faultLog, `${process.pid} ${op} ${key}\n`),
      ...(config.operations ? { operations: config.operations } : {}),
    });
  },
});
