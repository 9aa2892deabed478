import { describe, expect, it } from 'vitest';
import { RateLimiter, parseRate } from './RateLimiter.js';

describe('parseRate', () => {
  it('reads bytes per second with SI and binary units', () => {
    expect(parseRate('100MB')).toBe(100_000_000);
    expect(parseRate('50MiB')).toBe(50 * 1024 * 1024);
    expect(parseRate('1g')).toBe(1e9);
    expect(parseRate('1048576')).toBe(1048576);
    expect(parseRate('2.5 MB/s')).toBe(2_500_000);
  });

  it('refuses what is not a rate, with the expected form', () => {
    for (const bad of ['', 'fast', '10 parsecs', '0', '-5MB']) expect(() => parseRate(bad)).toThrow(/is not a rate/);
  });
});

describe('RateLimiter', () => {
  it('makes N bytes take at least N / rate', async () => {
    const limiter = new RateLimiter(1_000_000);
    const started = Date.now();
    for (let i = 0; i < 10; i++) await limiter.take(30_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(295);
  });

  it('does not slow a stream that stays under the rate', async () => {
    const limiter = new RateLimiter(1e12);
    const started = Date.now();
    for (let i = 0; i < 100; i++) await limiter.take(1_000_000);
    expect(Date.now() - started).toBeLessThan(50);
  });
});
