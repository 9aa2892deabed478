export type { TestServer } from './types.js';
export { startAll, requireEnv } from './all.js';
export { startGcsEmulator } from './gcs.js';
