import { describe, expect, it } from 'vitest';
import { requireEnv, startAll } from './all.js';

describe('startAll', () => {
  it('refuses an unknown server name', async () => {
    await expect(startAll(['ftp'])).rejects.toThrow(/unknown test server "ftp"/);
  });

  it('runs under the global setup, whose variables reach the test workers', () => {
    expect(process.env.STRATA_TEST_SERVERS_STARTED).toBeTypeOf('string');
  });

  it('names a variable the global setup did not provide', () => {
    expect(() => requireEnv('STRATA_TEST_NOT_A_THING')).toThrow(/STRATA_TEST_NOT_A_THING is not set/);
  });
});
