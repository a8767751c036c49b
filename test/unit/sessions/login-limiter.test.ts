import { describe, expect, it } from '@jest/globals';
import { createLoginLimiter, loginAccountKey, signInSource } from '../../../src/sessions/login-limiter.ts';
import { createMemoryEphemeralStore } from '../../../src/store/ephemeral/memory-ephemeral-store.ts';

const LIMITS = {
  failuresPerUsername: 3,
  usernameWindowSeconds: 900,
  lockoutSeconds: 60,
  maxLockoutSeconds: 300,
  failuresPerAccount: 8,
  accountWindowSeconds: 600,
  knownSourceDays: 30,
  failuresPerIp: 10,
  ipWindowSeconds: 3600,
};
const ALICE = loginAccountKey({ id: 'alice-id' }, 'alice');

describe('login limiter', () => {
  function setup(limits: Partial<typeof LIMITS> = {}) {
    let now = 0;
    const store = createMemoryEphemeralStore({ clock: () => now });
    return { limiter: createLoginLimiter(store, { ...LIMITS, ...limits }), advance: (seconds: number) => (now += seconds * 1000), close: () => store.close() };
  }

  it('counts an account in one bucket whatever name addresses it, and an unknown name by itself in any case', () => {
    expect(loginAccountKey({ id: 'alice-id' }, 'alice@example.org')).toBe(ALICE);
    expect(loginAccountKey(null, 'Nobody@Example.org')).toBe(loginAccountKey(null, 'nobody@example.org'));
    expect(loginAccountKey(null, 'nobody')).not.toBe(loginAccountKey(null, 'somebody'));
    expect(loginAccountKey(null, 'user:alice-id')).not.toBe(ALICE);
  });

  it('locks a source out of an account after its failures, doubling each lockout up to the maximum, and only that source', async () => {
    // (The account-wide and per-address limits are out of the way here: the next tests are about them.)
    const { limiter, advance, close } = setup({ failuresPerAccount: 100, failuresPerIp: 100 });
    const lockouts: number[] = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 2; i++) expect(await limiter.failed(ALICE, '10.0.0.1')).toBe(0);
      lockouts.push(await limiter.failed(ALICE, '10.0.0.1'));
      expect(await limiter.check(ALICE, '10.0.0.1')).toEqual({ retryAfterSeconds: lockouts.at(-1), limit: 3 });
      // The owner, elsewhere, is not locked out by another source's failures.
      expect(await limiter.check(ALICE, '10.9.9.9')).toBeNull();
      advance(lockouts.at(-1)!);
      expect(await limiter.check(ALICE, '10.0.0.1')).toBeNull();
    }
    expect(lockouts).toEqual([60, 120, 240, 300]);
    await close();
  });

  it('lets all sources together fail an account only at its pace; a source that signed in before keeps its own budget', async () => {
    const { limiter, advance, close } = setup();
    await limiter.succeeded(ALICE, '192.0.2.7');
    for (let i = 0; i < 8; i++) await limiter.failed(ALICE, `10.0.1.${i}`);
    expect(await limiter.check(ALICE, '10.0.2.1')).toEqual({ retryAfterSeconds: 600, limit: 8 });
    expect(await limiter.check(ALICE, '192.0.2.7')).toBeNull();
    // Another account is not touched.
    expect(await limiter.check(loginAccountKey({ id: 'bob-id' }, 'bob'), '10.0.2.1')).toBeNull();
    // The known source's own failures still lock it out.
    for (let i = 0; i < 3; i++) await limiter.failed(ALICE, '192.0.2.7');
    expect(await limiter.check(ALICE, '192.0.2.7')).toEqual({ retryAfterSeconds: 60, limit: 3 });
    advance(600);
    expect(await limiter.check(ALICE, '10.0.2.1')).toBeNull();
    await close();
  });

  it('forgets a source\'s failures after its success, and counts per address across accounts', async () => {
    const { limiter, advance, close } = setup();
    await limiter.failed(ALICE, '10.1.1.1');
    await limiter.failed(ALICE, '10.1.1.1');
    await limiter.succeeded(ALICE, '10.1.1.1');
    expect(await limiter.failed(ALICE, '10.1.1.1')).toBe(0);
    for (let i = 0; i < 7; i++) await limiter.failed(loginAccountKey(null, `user-${i}`), '10.1.1.1');
    const someoneNew = loginAccountKey(null, 'someone-new');
    expect(await limiter.check(someoneNew, '10.1.1.1')).toEqual({ retryAfterSeconds: 3600, limit: 10 });
    expect(await limiter.check(someoneNew, '10.2.2.2')).toBeNull();
    // Alice signed in from there: the address's spraying does not keep her out.
    expect(await limiter.check(ALICE, '10.1.1.1')).toBeNull();
    advance(3600);
    expect(await limiter.check(someoneNew, '10.1.1.1')).toBeNull();
    await close();
  });

  it('unlocks an account: every source\'s lockout and the account-wide pace, not other accounts', async () => {
    const { limiter, close } = setup();
    const bob = loginAccountKey({ id: 'bob-id' }, 'bob');
    for (let i = 0; i < 3; i++) await Promise.all([limiter.failed(ALICE, '10.3.0.1'), limiter.failed(ALICE, '10.3.0.2'), limiter.failed(bob, '10.3.0.1')]);
    for (let i = 3; i < 5; i++) await limiter.failed(ALICE, `10.3.0.${i}`);
    expect(await limiter.check(ALICE, '10.3.0.1')).not.toBeNull();
    expect(await limiter.check(ALICE, '10.3.0.9')).not.toBeNull();
    expect(await limiter.unlock(ALICE)).toEqual({ lockedSources: 2, paced: true });
    for (const source of ['10.3.0.1', '10.3.0.2', '10.3.0.9']) expect(await limiter.check(ALICE, source)).toBeNull();
    expect(await limiter.check(bob, '10.3.0.1')).not.toBeNull();
    // The failure counts start again from zero.
    expect(await limiter.failed(ALICE, '10.3.0.1')).toBe(0);
    expect(await limiter.unlock(ALICE)).toEqual({ lockedSources: 0, paced: false });
    await close();
  });
});

describe('sign-in source', () => {
  it('is an IPv4 address itself, and an IPv6 address by its /64, however it is written', () => {
    expect(signInSource('192.0.2.7')).toBe('192.0.2.7');
    expect(signInSource('::ffff:192.0.2.7')).toBe('192.0.2.7');
    const one = signInSource('2001:db8:0:12::1');
    expect(one).toBe('2001:db8:0:12::/64');
    for (const address of ['2001:DB8:0:12::ffff', '2001:0db8:0000:0012:abcd:1:2:3', '2001:db8::12:0:0:0:9']) expect(signInSource(address)).toBe(one);
    expect(signInSource('2001:db8:0:13::1')).not.toBe(one);
    expect(signInSource('::1')).toBe('0:0:0:0::/64');
    expect(signInSource('2001:db8::')).toBe('2001:db8:0:0::/64');
    expect(signInSource('unknown')).toBe('unknown');
  });
});
