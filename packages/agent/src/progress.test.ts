import { describe, expect, it } from 'vitest';
import { ProgressLine, formatProgress } from './progress.js';

describe('formatProgress', () => {
  it('shows bytes of the total, percent, rate and ETA', () => {
    expect(formatProgress('backup', { bytes: 512 * 2 ** 20, totalBytes: 2 * 2 ** 30, elapsedMs: 2000 })).toBe(
      'backup 512.0 MiB / 2.0 GiB (25%)  256.0 MiB/s  ETA 6s',
    );
  });

  it('writes long ETAs in minutes and hours, and omits them without a total', () => {
    expect(formatProgress('restore', { bytes: 2 ** 20, totalBytes: 2 ** 30, elapsedMs: 1000 })).toMatch(/ETA 17m03s$/);
    expect(formatProgress('restore', { bytes: 2 ** 20, totalBytes: 2 ** 40, elapsedMs: 1000 })).toMatch(/ETA 291h16m$/);
    expect(formatProgress('backup', { bytes: 1536, elapsedMs: 1000 })).toBe('backup 1.5 KiB  1.5 KiB/s');
  });
});

describe('ProgressLine', () => {
  const sink = (isTTY: boolean) => {
    const out: string[] = [];
    return { stream: { isTTY, write: (t: string) => out.push(t) }, out };
  };

  it('draws only on a TTY without --json or --log-level', () => {
    expect(ProgressLine.wanted({ isTTY: true, write: () => true }, { json: false, logLevelGiven: false })).toBe(true);
    expect(ProgressLine.wanted({ isTTY: false, write: () => true }, { json: false, logLevelGiven: false })).toBe(false);
    expect(ProgressLine.wanted({ write: () => true }, { json: false, logLevelGiven: false })).toBe(false);
    expect(ProgressLine.wanted({ isTTY: true, write: () => true }, { json: true, logLevelGiven: false })).toBe(false);
    expect(ProgressLine.wanted({ isTTY: true, write: () => true }, { json: false, logLevelGiven: true })).toBe(false);
  });

  it('writes nothing when disabled (stderr not a TTY)', () => {
    const { stream, out } = sink(false);
    const line = new ProgressLine('backup', stream, ProgressLine.wanted(stream, { json: false, logLevelGiven: false }), 0);
    for (let i = 0; i < 10; i++) line.update(i * 1000, 10_000);
    line.done();
    expect(out).toEqual([]);
  });

  it('redraws at most once per interval and clears the line at the end', () => {
    const { stream, out } = sink(true);
    const line = new ProgressLine('backup', stream, true, 60_000);
    for (let i = 0; i < 100; i++) line.update(i, 100);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(/^\r\x1b\[2Kbackup 0 B \/ 100 B \(0%\)/);
    line.done();
    expect(out.at(-1)).toBe('\r\x1b[2K');
  });

  it('shows a phase without bytes (restore-test replaying WAL) with its elapsed time, and nothing when disabled', () => {
    const { stream, out } = sink(true);
    const line = new ProgressLine('restore-test', stream, true, 60_000);
    line.phase('replaying WAL until promotion');
    expect(out).toEqual(['\r\x1b[2Krestore-test: replaying WAL until promotion  0s']);
    const quiet = sink(false);
    new ProgressLine('restore-test', quiet.stream, false).phase('running checks');
    expect(quiet.out).toEqual([]);
  });
});
