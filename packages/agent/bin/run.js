#!/usr/bin/env node
import { execute, settings } from '@oclif/core';

// Always run the built commands: oclif would otherwise look for TypeScript sources whenever
// NODE_ENV is not "production", costing start-up time and ~50 MB of memory.
settings.enableAutoTranspile = false;

await execute({ dir: import.meta.url });
