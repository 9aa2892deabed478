#!/usr/bin/env -S node --max-semi-space-size=1
// --max-semi-space-size=1: a backup allocates steadily; with V8's default the young generation
// grows to tens of MB and peak RSS varies by ±10 MB from run to run. At 1 MB it is flat and no
// slower. Commands strata writes for PostgreSQL (archive_command, restore_command) pass the same
// flags: see src/self.ts.

// PostgreSQL runs archive-push/archive-get once per WAL file: they skip oclif (src/archive/fastPath.ts)
// unless their arguments need it (--help, a mistake), which then goes through oclif as usual.
// STRATA_FAST_PATH=0 sends them through oclif too (to measure the difference).
const command = process.argv[2];
const fast = ['archive-push', 'archive-get', 'archive-push-async'].includes(command) && process.env.STRATA_FAST_PATH !== '0';
if (!(fast && (await (await import('../dist/archive/fastPath.js')).runFast(process.argv.slice(2))))) {
  const { execute, settings } = await import('@oclif/core');
  // Always run the built commands: oclif would otherwise look for TypeScript sources whenever
  // NODE_ENV is not "production", costing start-up time and ~50 MB of memory.
  settings.enableAutoTranspile = false;
  await execute({ dir: import.meta.url });
}
