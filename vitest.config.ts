import { defineConfig } from 'vitest/config';

/**
 * One vitest run with a project per package. Unit tests run from source; e2e drives the built
 * `strata` binary against real PostgreSQL clusters, one file at a time (2-core machines).
 */
export default defineConfig({
  test: {
    // Storage servers (RGW, Azurite, GCS emulator) start once per run, before any worker.
    globalSetup: ['packages/test-servers/src/globalSetup.ts'],
    projects: [
      { test: { name: 'core', root: 'packages/core', include: ['src/**/*.test.ts'] } },
      { test: { name: 'plugin-fs', root: 'packages/plugin-fs', include: ['src/**/*.test.ts'] } },
      { test: { name: 'plugin-encrypt-pgp', root: 'packages/plugin-encrypt-pgp', include: ['src/**/*.test.ts'], testTimeout: 30_000 } },
      { test: { name: 'plugin-azure', root: 'packages/plugin-azure', include: ['src/**/*.test.ts'], testTimeout: 30_000 } },
      // Against the GCS emulator the global setup starts; the kit's large-object cases need time.
      { test: { name: 'plugin-gcs', root: 'packages/plugin-gcs', include: ['src/**/*.test.ts'], testTimeout: 60_000 } },
      // Against the Ceph RGW the global setup starts; the kit streams large objects through it.
      { test: { name: 'plugin-s3', root: 'packages/plugin-s3', include: ['src/**/*.test.ts'], testTimeout: 30_000 } },
      { test: { name: 'agent', root: 'packages/agent', include: ['src/**/*.test.ts'] } },
      { test: { name: 'test-servers', root: 'packages/test-servers', include: ['src/**/*.test.ts'] } },
      {
        test: {
          name: 'e2e',
          root: 'e2e',
          include: ['**/*.test.ts'],
          exclude: ['node_modules/**'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
          pool: 'forks',
        },
      },
    ],
  },
});
