import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { runStorageConformance } from '@strata/core/testing';
import plugin from './index.js';

// What a vendor's own test file looks like: the kit, against the real thing.
runStorageConformance('strata-plugin-example', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'strata-example-'));
  const backend = await plugin.create(plugin.configSchema.parse({ dir }), { configDir: '/' });
  return { backend, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
});
