import { StrataError } from '../errors/index.js';

/**
 * Paces a byte stream to `bytesPerSecond`: take(n) returns once the stream, counted from its first
 * byte, has not gone faster than the rate. A run of N bytes therefore lasts at least N / rate.
 */
export class RateLimiter {
  private started: number | undefined;
  private taken = 0;

  constructor(readonly bytesPerSecond: number) {
    if (!(bytesPerSecond > 0)) throw new StrataError('InvalidArgument', `a rate must be positive (got ${bytesPerSecond})`);
  }

  async take(n: number): Promise<void> {
    this.started ??= Date.now();
    this.taken += n;
    // Bytes may go once the time they cost has passed: the stream's start + what it took so far.
    const due = this.started + (this.taken / this.bytesPerSecond) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

/** A limiter for `rate` bytes/s, or none. */
export function rateLimiter(rate: number | undefined): RateLimiter | undefined {
  return rate ? new RateLimiter(rate) : undefined;
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
};

/** Parses a rate in bytes per second: `100MB`, `50MiB`, `1G`, `1048576` (optionally with `/s`). */
export function parseRate(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*(?:\/s)?\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  const value = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!(value >= 1)) {
    throw new StrataError('InvalidArgument', `"${text}" is not a rate`, {
      hint: 'give bytes per second, e.g. 100MB, 50MiB, 1G or 1048576',
    });
  }
  return Math.floor(value);
}
