#!/usr/bin/env -S node --max-semi-space-size=1
// --max-semi-space-size=1: a backup allocates steadily; with V8's default the young generation
// grows to tens of MB and peak RSS varies by ±10 MB from run to run. At 1 MB it is flat and no
// slower. Commands strata writes for PostgreSQL (archive_command, restore_command) pass the same
// flags: see src/self.ts.
import { execute, settings } from '@oclif/core';

// Always run the built commands: oclif would otherwise look for TypeScript sources whenever
// NODE_ENV is not "production", costing start-up time and ~50 MB of memory.
settings.enableAutoTranspile = false;

await execute({ dir: import.meta.url });
