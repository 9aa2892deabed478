/**
 * A storage server started for a test run. `env` carries how to reach it (endpoint, credentials,
 * bucket/container) as STRATA_TEST_* variables; the vitest global setup copies it into
 * process.env before any test worker starts, so every project sees the same servers.
 */
export interface TestServer {
  name: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}
