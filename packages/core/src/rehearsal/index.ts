export { runRehearsal, type RehearsalOptions } from './rehearsal.js';
export { findPgBin } from './pgBinaries.js';
export { latestRehearsal, storeRehearsal, rehearsalId, REHEARSAL_KIND } from './rehearsalStore.js';
export type { RehearsalCheck, RehearsalResult } from './types.js';
