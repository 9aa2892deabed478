export type { TestServer } from './types.js';
export { startAll, requireEnv } from './all.js';
export { startRgw } from './rgw.js';
