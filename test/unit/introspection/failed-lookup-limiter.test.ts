import { describe, expect, it } from '@jest/globals';
import { createFailedLookupLimiter } from '../../../src/introspection/failed-lookup-limiter.ts';

describe('the failed-lookup limiter', () => {
  it('lets a source fail `failures` times at once, then refuses it until one failure has been paid back', () => {
    let now = 1_000_000;
    const limiter = createFailedLookupLimiter({ failures: 3, windowSeconds: 60, clock: () => now });
    expect(limiter.retryAfterMs('a')).toBe(0);
    expect([limiter.failed('a'), limiter.failed('a')]).toEqual([false, false]);
    expect(limiter.retryAfterMs('a')).toBe(0);
    // The third uses the allowance up: that one says so, once.
    expect(limiter.failed('a')).toBe(true);
    expect(limiter.retryAfterMs('a')).toBe(20_000);
    expect(limiter.retryAfterMs('b')).toBe(0);
    now += 19_999;
    expect(limiter.retryAfterMs('a')).toBe(1);
    now += 1;
    expect(limiter.retryAfterMs('a')).toBe(0);
    expect(limiter.failed('a')).toBe(true);
    expect(limiter.retryAfterMs('a')).toBe(20_000);
    // A minute of quiet gives the whole allowance back.
    now += 80_000;
    expect([limiter.failed('a'), limiter.failed('a'), limiter.retryAfterMs('a')]).toEqual([false, false, 0]);
  });

  it('answers a refusal with Retry-After and the RateLimit headers, in whole seconds', () => {
    const limiter = createFailedLookupLimiter({ failures: 100, windowSeconds: 60 });
    expect(limiter.refusalHeaders(1_200)).toEqual({ 'Retry-After': '2', 'RateLimit-Limit': '100', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '2' });
    expect(limiter.refusalHeaders(1)['Retry-After']).toBe('1');
  });

  it('remembers at most maxSources, forgetting those whose allowance is whole again first, then the oldest', () => {
    let now = 0;
    const limiter = createFailedLookupLimiter({ failures: 1, windowSeconds: 10, maxSources: 2, clock: () => now });
    limiter.failed('old');
    now += 20_000; // 'old' is whole again
    limiter.failed('a');
    limiter.failed('b'); // forgets 'old'
    expect([limiter.retryAfterMs('a'), limiter.retryAfterMs('b')]).toEqual([10_000, 10_000]);
    limiter.failed('c'); // both still limited: the oldest, 'a', goes
    expect([limiter.retryAfterMs('a'), limiter.retryAfterMs('b'), limiter.retryAfterMs('c')]).toEqual([0, 10_000, 10_000]);
  });
});
