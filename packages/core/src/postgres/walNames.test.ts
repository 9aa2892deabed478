import { describe, expect, it } from 'vitest';
import { expectStrataError } from '../testing/assertions.js';
import { formatLsn, isWalFileName, parseLsn, parseSegmentName, segmentName, segmentNameForLsn, segmentRange } from './walNames.js';

const MiB16 = 16 * 1024 * 1024;
const GiB = 1024 * 1024 * 1024;

describe('parseLsn / formatLsn', () => {
  it.each([
    ['0/0', 0n],
    ['0/3000028', 0x3000028n],
    ['16/B374D848', (0x16n << 32n) | 0xb374d848n],
    ['FFFFFFFF/FFFFFFFF', 0xffffffffffffffffn],
  ])('round-trips %s', (text, value) => {
    expect(parseLsn(text)).toBe(value);
    expect(formatLsn(value)).toBe(text);
  });

  it('accepts lowercase and surrounding blanks, and prints as PostgreSQL does', () => {
    expect(formatLsn(parseLsn(' 1/a0b ')).toString()).toBe('1/A0B');
  });

  it.each(['', '0', '0/', '/1', '1/2/3', 'G/0', '123456789/0', '0x1/0', '1 /2'])('rejects %j with a hint', async (text) => {
    const err = await expectStrataError(async () => parseLsn(text), 'InvalidArgument');
    expect(err.message).toContain(`"${text}"`);
    expect(err.hint).toContain('0/16B3748');
  });
});

describe('segmentNameForLsn', () => {
  it.each([
    ['0/3000028', MiB16, '000000010000000000000003'],
    ['0/0', MiB16, '000000010000000000000000'],
    ['0/FFFFFFFF', MiB16, '0000000100000000000000FF'],
    ['1/0', MiB16, '000000010000000100000000'],
    ['2A/5F000000', MiB16, '000000010000002A0000005F'],
    ['0/3000028', GiB, '000000010000000000000000'],
    ['0/FFFFFFFF', GiB, '000000010000000000000003'],
    ['1/40000000', GiB, '000000010000000100000001'],
  ])('puts %s with %d-byte segments in %s', (lsn, size, name) => {
    expect(segmentNameForLsn(1, parseLsn(lsn), size)).toBe(name);
  });

  it('writes the timeline in hex', () => {
    expect(segmentNameForLsn(0x1a, parseLsn('0/3000028'), MiB16)).toBe('0000001A0000000000000003');
  });

  it('agrees with parseSegmentName', () => {
    expect(parseSegmentName('0000001A000000020000003F', MiB16)).toEqual({ timeline: 26, segNo: 2n * 256n + 63n });
    expect(segmentName(26, 2n * 256n + 63n, MiB16)).toBe('0000001A000000020000003F');
    expect(() => parseSegmentName('00000001000000020000003f', MiB16)).toThrow(/not a WAL segment name/);
  });
});

describe('segmentRange', () => {
  it('crosses a log-id boundary with 16 MiB segments', () => {
    expect(segmentRange('0000000100000000000000FE', '000000010000000100000001', MiB16)).toEqual([
      '0000000100000000000000FE',
      '0000000100000000000000FF',
      '000000010000000100000000',
      '000000010000000100000001',
    ]);
  });

  it('crosses a log-id boundary with 1 GiB segments (4 per log id)', () => {
    expect(segmentRange('000000010000000000000002', '000000010000000100000000', GiB)).toEqual([
      '000000010000000000000002',
      '000000010000000000000003',
      '000000010000000100000000',
    ]);
  });

  it('holds one segment when first equals last, and none when last comes first', () => {
    expect(segmentRange('000000010000000000000005', '000000010000000000000005', MiB16)).toEqual(['000000010000000000000005']);
    expect(segmentRange('000000010000000000000005', '000000010000000000000004', MiB16)).toEqual([]);
  });
});

describe('isWalFileName', () => {
  it.each([
    '000000010000000000000003',
    '0000000A000000FF000000FE',
    '00000002.history',
    '000000010000000000000003.00000028.backup',
    '000000010000000000000003.partial',
  ])('accepts %s', (name) => expect(isWalFileName(name)).toBe(true));

  it.each([
    '',
    '00000001000000000000003',
    '0000000100000000000000030',
    '00000001000000000000000a',
    '0000002.history',
    '00000002.HISTORY',
    '000000010000000000000003.0000028.backup',
    '000000010000000000000003.ready',
    '000000010000000000000003.partial.tmp',
    'archive_status',
    'RECOVERYXLOG',
    '../000000010000000000000003',
  ])('rejects %j', (name) => expect(isWalFileName(name)).toBe(false));
});
