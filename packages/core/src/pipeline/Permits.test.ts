import { describe, expect, it } from 'vitest';
import { Permits } from './Permits.js';

describe('Permits', () => {
  it('hands out at most size permits and serves waiters in order', async () => {
    const permits = new Permits(2);
    await permits.acquire();
    await permits.acquire();
    const order: number[] = [];
    const a = permits.acquire().then(() => order.push(1));
    const b = permits.acquire().then(() => order.push(2));
    await Promise.resolve();
    expect(order).toEqual([]);
    permits.release();
    await a;
    expect(order).toEqual([1]);
    permits.release();
    await b;
    expect(order).toEqual([1, 2]);
    permits.release();
    permits.release();
    // Both permits are free again: two acquire at once, a third waits.
    await permits.acquire();
    await permits.acquire();
    let third = false;
    const c = permits.acquire().then(() => (third = true));
    await Promise.resolve();
    expect(third).toBe(false);
    permits.release();
    await c;
    expect(third).toBe(true);
  });
});
