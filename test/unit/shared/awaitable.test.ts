import { describe, expect, it } from '@jest/globals';
import { isPromise, thenNow } from '../../../src/shared/awaitable.ts';

describe('awaitable', () => {
  it('applies the next step at once to a value, and after it resolves to a promise', async () => {
    const double = (n: number) => n * 2;
    expect(thenNow(21, double)).toBe(42);
    const later = thenNow(Promise.resolve(21), double);
    expect(isPromise(later)).toBe(true);
    expect(await later).toBe(42);
    expect(isPromise(null)).toBe(false);
  });
});
