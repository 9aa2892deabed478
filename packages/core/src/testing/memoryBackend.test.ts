import { describe, expect, it } from 'vitest';
import { MemoryBackend } from './memoryBackend.js';
import { chaosBackend } from './chaos.js';
import { expectStrataError } from './assertions.js';
import { runStorageConformance } from './conformance.js';

// The test double engine tests rely on must keep the same contract as a real backend.
runStorageConformance('memory', async () => ({ backend: new MemoryBackend() }), { objectsInMemory: true });

describe('chaosBackend', () => {
  it('fails only the Nth call of the listed operations, with a retryable error', async () => {
    const backend = chaosBackend(new MemoryBackend(), { failOnCall: 2, operations: ['put'] });
    await backend.put('a', Buffer.from('1'));
    expect(await backend.head('a')).toBeDefined();
    const err = await expectStrataError(() => backend.put('b', Buffer.from('2')), 'Unavailable');
    expect(err.retryable).toBe(true);
    expect(await backend.head('b')).toBeUndefined();
    await backend.put('b', Buffer.from('2'));
    expect(backend.calls).toMatchObject({ put: 3, head: 2 });
  });

  it('injects the given code into list iteration too', async () => {
    const backend = chaosBackend(new MemoryBackend(), { failOnCall: 1, code: 'RateLimited' });
    await expectStrataError(async () => {
      for await (const o of backend.list('')) void o;
    }, 'RateLimited');
  });
});
