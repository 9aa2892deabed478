import { expect } from 'vitest';
import { isStrataError, type ErrorCode, type StrataError } from '../errors/index.js';

/** Calls `fn` and returns what it rejected with; fails the test when it resolves. */
export async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  expect.fail('expected the call to reject, but it resolved');
}

/** Asserts that `fn` rejects with a StrataError of `code`, and returns it. */
export async function expectStrataError(fn: () => Promise<unknown>, code: ErrorCode): Promise<StrataError> {
  const err = await rejection(fn);
  expect(isStrataError(err), `expected a StrataError, got ${String(err)}`).toBe(true);
  expect((err as StrataError).code).toBe(code);
  return err as StrataError;
}
