import { createRequire } from 'node:module';

/**
 * node:fs, required rather than imported: an ESM import of node:fs builds its whole namespace,
 * which loads some twenty stream modules. The async archive-push client, started by PostgreSQL
 * once per WAL file, uses only synchronous calls on tiny files and must not pay for them.
 */
export const lightFs = createRequire(import.meta.url)('node:fs') as typeof import('node:fs');
