import { describe, expect, it } from 'vitest';
import { configSchema } from './schema.js';

const base = { clusters: { main: { pgdata: '/x' } }, repos: [{ name: 'a', plugin: 'fs' }] };

describe('backup and restore parallelism and rates', () => {
  it('reads processMax and rates with units', () => {
    const c = configSchema.parse({ ...base, backup: { processMax: 3, maxRate: '100MB' }, restore: { maxRate: 5000 } });
    expect(c.backup).toMatchObject({ processMax: 3, maxRate: 100_000_000 });
    expect(c.restore).toEqual({ maxRate: 5000 });
    expect(configSchema.parse(base).backup.maxRate).toBeUndefined();
  });

  it('names the bad key and the expected form', () => {
    const r = configSchema.safeParse({ ...base, backup: { maxRate: 'fast' } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['backup', 'maxRate']);
    expect(r.error?.issues[0]?.message).toMatch(/"fast" is not a rate \(e\.g\. 100MB/);
    expect(configSchema.safeParse({ ...base, restore: { processMax: 0 } }).success).toBe(false);
  });
});
