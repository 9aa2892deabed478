import { describe, expect, it } from 'vitest';
import { Lanes } from './Lanes.js';
import { SlotRing } from './slots.js';

const tick = (ms = 1) => new Promise((r) => setTimeout(r, ms));

describe('Lanes', () => {
  it('runs at most `size` tasks at once and waits for all of them', async () => {
    const lanes = new Lanes(3);
    let running = 0;
    let most = 0;
    const done: number[] = [];
    for (let i = 0; i < 10; i++) {
      await lanes.run(async () => {
        running++;
        most = Math.max(most, running);
        await tick(5 - (i % 5));
        running--;
        done.push(i);
      });
    }
    await lanes.drain();
    expect(most).toBe(3);
    expect(done.sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
  });

  it('starts nothing after a failure and throws it once the running tasks settle', async () => {
    const lanes = new Lanes(2);
    let settled = 0;
    await lanes.run(async () => {
      await tick(20);
      settled++;
    });
    await lanes.run(() => Promise.reject(new Error('copy failed')));
    await tick(5);
    let started = false;
    await lanes.run(async () => {
      started = true;
    });
    expect(lanes.failed).toBe(true);
    await expect(lanes.drain()).rejects.toThrow('copy failed');
    expect(started).toBe(false);
    expect(settled).toBe(1);
  });
});

describe('SlotRing', () => {
  it('hands out each slot once, makes waiters queue in order, and never lets tryAcquire jump the queue', async () => {
    const ring = new SlotRing({ slots: 2, inSize: 8192, outSize: 8300, pageSize: 8192 });
    const a = await ring.acquire();
    const b = ring.tryAcquire()!;
    expect(new Set([a.index, b.index]).size).toBe(2);
    expect(ring.tryAcquire()).toBeUndefined();
    const order: number[] = [];
    const w1 = ring.acquire().then((s) => {
      order.push(1);
      return s;
    });
    const w2 = ring.acquire().then((s) => {
      order.push(2);
      return s;
    });
    ring.release(a);
    expect(ring.tryAcquire()).toBeUndefined();
    ring.release(b);
    const [s1, s2] = await Promise.all([w1, w2]);
    expect(order).toEqual([1, 2]);
    expect([s1.index, s2.index].sort()).toEqual([a.index, b.index].sort());
    // Views of one slot do not overlap another's.
    s1.input.fill(1);
    s2.input.fill(2);
    expect(s1.input[0]).toBe(1);
    expect(s1.output.byteOffset).toBeGreaterThanOrEqual(s1.input.byteOffset + 8192);
  });
});
