import { startAll } from './all.js';

/** vitest global setup: the storage servers start once per test run, before any worker. */
export default async function setup(): Promise<() => Promise<void>> {
  const servers = await startAll();
  for (const s of servers) Object.assign(process.env, s.env);
  process.env.STRATA_TEST_SERVERS_STARTED = servers.map((s) => s.name).join(',');
  return async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
  };
}
