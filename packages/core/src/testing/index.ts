/**
 * `@strata/core/testing`: the storage contract's executable form, and test doubles for engine
 * tests. Needs vitest (an optional peer dependency); never imported by production code.
 */
export { runStorageConformance, type ConformanceBackend, type ConformanceOptions } from './conformance.js';
export { expectStrataError, rejection } from './assertions.js';
export { chaosBackend, type ChaosBackend, type ChaosOptions, type StorageOperation } from './chaos.js';
export { MemoryBackend } from './memoryBackend.js';
export { MiB, generatedChunks, generatedStream, readAll, sha256, sha256Of, slowStream } from './streamData.js';
