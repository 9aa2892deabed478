import { describe, expect, it } from 'vitest';
import { expectStrataError } from '../testing/assertions.js';
import { LABEL_RE, assertLabel, fullLabel } from './label.js';

describe('backup labels', () => {
  it('names a full backup by its UTC start time', () => {
    expect(fullLabel(new Date('2026-11-22T01:30:00.999Z'))).toBe('20261122-013000F');
    expect(fullLabel(new Date('2026-11-22T03:30:05+02:00'))).toBe('20261122-013005F');
  });

  it('sorts labels in time order', () => {
    const times = ['2026-01-02T00:00:00Z', '2025-12-31T23:59:59Z', '2026-01-01T10:00:00Z'].map((t) => new Date(t));
    const labels = times.map(fullLabel);
    expect([...labels].sort()).toEqual([...times].sort((a, b) => a.getTime() - b.getTime()).map(fullLabel));
  });

  it.each(['20261122-013000F', '20261122-013000F_20261123-013000D', '20261122-013000F_20261123-013000I'])('accepts %s', (label) => {
    expect(LABEL_RE.test(label)).toBe(true);
    expect(() => assertLabel(label)).not.toThrow();
  });

  it.each([
    '',
    '20261122-013000',
    '20261122-013000D',
    '20261122-013000F_',
    '20261122-013000F_20261123-013000F',
    '2026112-013000F',
    '../20261122-013000F',
  ])('rejects %j with a hint', async (label) => {
    const err = await expectStrataError(async () => assertLabel(label), 'InvalidArgument');
    expect(err.hint).toMatch(/strata info/);
  });
});
