import { describe, expect, it } from '@jest/globals';
import { createLoginLimiter } from '../../../src/sessions/login-limiter.ts';
import { createMemoryEphemeralStore } from '../../../src/store/ephemeral/memory-ephemeral-store.ts';

const LIMITS = { failuresPerUsername: 3, usernameWindowSeconds: 900, lockoutSeconds: 60, maxLockoutSeconds: 300, failuresPerIp: 10, ipWindowSeconds: 3600 };

describe('login limiter', () => {
  function setup() {
    let now = 0;
    const store = createMemoryEphemeralStore({ clock: () => now });
    return { limiter: createLoginLimiter(store, LIMITS), advance: (seconds: number) => (now += seconds * 1000), close: () => store.close() };
  }

  it('locks a username after its failures, doubling each lockout up to the maximum', async () => {
    const { limiter, advance, close } = setup();
    const lockouts: number[] = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 2; i++) expect(await limiter.failed('Alice', `10.0.0.${round}`)).toBe(0);
      lockouts.push(await limiter.failed('alice', `10.0.0.${round}`));
      expect(await limiter.retryAfter('ALICE', '10.9.9.9')).toBe(lockouts.at(-1));
      advance(lockouts.at(-1)!);
      expect(await limiter.retryAfter('alice', '10.9.9.9')).toBe(0);
    }
    expect(lockouts).toEqual([60, 120, 240, 300]);
    await close();
  });

  it('forgets failures after a success, and counts per address across usernames', async () => {
    const { limiter, advance, close } = setup();
    await limiter.failed('bob', '10.1.1.1');
    await limiter.failed('bob', '10.1.1.1');
    await limiter.succeeded('bob');
    expect(await limiter.failed('bob', '10.1.1.1')).toBe(0);
    for (let i = 0; i < 7; i++) await limiter.failed(`user-${i}`, '10.1.1.1');
    expect(await limiter.retryAfter('someone-new', '10.1.1.1')).toBe(3600);
    expect(await limiter.retryAfter('someone-new', '10.2.2.2')).toBe(0);
    advance(3600);
    expect(await limiter.retryAfter('someone-new', '10.1.1.1')).toBe(0);
    await close();
  });
});
