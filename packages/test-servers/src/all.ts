import { startAzurite } from './azurite.js';
import { startGcsEmulator } from './gcs.js';
import { startRgw } from './rgw.js';
import type { TestServer } from './types.js';

/** Each storage server the tests need, by the name STRATA_TEST_SERVERS uses. */
const STARTERS: Record<string, () => Promise<TestServer>> = {
  azure: startAzurite,
  gcs: startGcsEmulator,
  s3: startRgw,
};

/**
 * Starts the named servers (default: all) in parallel. STRATA_TEST_SERVERS=s3,azure narrows it
 * for a quick local run. If one fails to start, the others are stopped and the error names it.
 */
export async function startAll(
  names = (process.env.STRATA_TEST_SERVERS ?? Object.keys(STARTERS).join(',')).split(','),
): Promise<TestServer[]> {
  const wanted = names.map((n) => n.trim()).filter(Boolean);
  for (const n of wanted) if (!STARTERS[n]) throw new Error(`unknown test server "${n}" (known: ${Object.keys(STARTERS).join(', ')})`);
  const results = await Promise.allSettled(wanted.map((n) => STARTERS[n]!()));
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${wanted[i]}: ${(r.reason as Error).message}`] : []));
  if (failed.length > 0) {
    await Promise.allSettled(started.map((s) => s.stop()));
    throw new Error(`test servers failed to start:\n${failed.join('\n')}`);
  }
  return started;
}

/** The value of a STRATA_TEST_* variable the global setup provides, or an error that says why it is missing. */
export function requireEnv(name: string): string {
  const v = process.env[name];
  if (!v)
    throw new Error(
      `${name} is not set: run the tests through vitest from the repository root (its global setup starts the storage servers)`,
    );
  return v;
}
