import { describe, expect, it } from 'vitest';
import { expectStrataError } from '../testing/assertions.js';
import { parseTarget, parseTargetTime } from './target.js';

describe('parseTargetTime', () => {
  it.each([
    ['2026-11-22 14:03:00+00', '2026-11-22T14:03:00.000Z'],
    ['2026-11-22 14:03:00+0530', '2026-11-22T08:33:00.000Z'],
    ['2026-11-22 14:03:00+05:30', '2026-11-22T08:33:00.000Z'],
    ['2026-11-22 14:03:00-08', '2026-11-22T22:03:00.000Z'],
    ['2026-11-22T14:03:00Z', '2026-11-22T14:03:00.000Z'],
    ['2026-11-22 14:03:00z', '2026-11-22T14:03:00.000Z'],
    ['2026-11-22 14:03:00.5+00', '2026-11-22T14:03:00.500Z'],
    ['2026-11-22 14:03:00.123456+00', '2026-11-22T14:03:00.123Z'],
    ['  2026-11-22 14:03:00 +01  ', '2026-11-22T13:03:00.000Z'],
  ])('reads %j as %s', (text, iso) => {
    expect(parseTargetTime(text).toISOString()).toBe(iso);
  });

  it.each(['2026-11-22 14:03:00', '2026-11-22T14:03:00', '2026-11-22 14:03+00', '22/11/2026 14:03:00+00', 'yesterday'])(
    'rejects %j, which has no offset or is not a timestamp, with a hint',
    async (text) => {
      const err = await expectStrataError(async () => parseTargetTime(text), 'InvalidArgument');
      expect(err.message).toContain(text);
      expect(err.hint).toContain("'2026-11-22 14:03:00+00'");
    },
  );

  it.each(['2026-13-01 14:03:00+00', '2026-02-30 14:03:00+00', '2026-04-31 14:03:00+00', '2026-11-22 25:00:00+00'])(
    'rejects the well-formed but impossible %j instead of rolling it over',
    async (text) => {
      const err = await expectStrataError(async () => parseTargetTime(text), 'InvalidArgument');
      expect(err.message).toMatch(/not a valid time/);
    },
  );

  it('accepts February 29 of a leap year', () => {
    expect(parseTargetTime('2028-02-29 00:00:00+00').toISOString()).toBe('2028-02-29T00:00:00.000Z');
  });
});

describe('parseTarget', () => {
  it('returns undefined when no target is given (recover to the end of WAL)', () => {
    expect(parseTarget({})).toBeUndefined();
    expect(parseTarget({ immediate: false })).toBeUndefined();
  });

  it('reads each kind of target', () => {
    expect(parseTarget({ time: ' 2026-11-22 14:03:00+00 ' })).toEqual({
      kind: 'time',
      time: new Date('2026-11-22T14:03:00Z'),
      text: '2026-11-22 14:03:00+00',
    });
    expect(parseTarget({ xid: '123456' })).toEqual({ kind: 'xid', xid: '123456' });
    expect(parseTarget({ lsn: '0/3000028' })).toEqual({ kind: 'lsn', lsn: 0x3000028n, text: '0/3000028' });
    expect(parseTarget({ name: 'before-migration' })).toEqual({ kind: 'name', name: 'before-migration' });
    expect(parseTarget({ immediate: true })).toEqual({ kind: 'immediate' });
  });

  it.each([
    { time: '2026-11-22 14:03:00+00', xid: '5' },
    { lsn: '0/1', name: 'x' },
    { xid: '5', immediate: true },
  ])('refuses two targets at once: %j', async (opts) => {
    const err = await expectStrataError(async () => parseTarget(opts), 'InvalidArgument');
    expect(err.message).toMatch(/at most one/);
  });

  it.each(['', '12a', '-1', '1.5', ' 12'])('refuses xid %j, which is not all digits', async (xid) => {
    const err = await expectStrataError(async () => parseTarget({ xid }), 'InvalidArgument');
    expect(err.hint).toMatch(/txid_current/);
  });

  it('refuses a bad LSN and an empty or over-long restore point name', async () => {
    await expectStrataError(async () => parseTarget({ lsn: 'nope' }), 'InvalidArgument');
    await expectStrataError(async () => parseTarget({ name: '' }), 'InvalidArgument');
    await expectStrataError(async () => parseTarget({ name: 'n'.repeat(64) }), 'InvalidArgument');
    expect(parseTarget({ name: 'n'.repeat(63) })).toEqual({ kind: 'name', name: 'n'.repeat(63) });
  });
});
