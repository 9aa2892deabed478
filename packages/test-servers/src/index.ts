export type { TestServer } from './types.js';
export { startAll, requireEnv } from './all.js';
export { startAzurite, type AzuriteOptions } from './azurite.js';
export { startGcsEmulator } from './gcs.js';
export { startRgw } from './rgw.js';
