import { describe, expect, it } from '@jest/globals';
import { createCachedCredentialVerifier } from '../../../src/introspection/credential-cache.ts';
import type { ActiveCredential, CredentialVerifier } from '../../../src/introspection/credential-verifier.ts';
import { isPromise } from '../../../src/shared/awaitable.ts';
import { createGate } from '../../support/gate.ts';

// The cache in front of the verifier. The verifier underneath is a table the test controls (the
// cache is what is under test); the full path runs against real stores in
// test/integration/introspection-*.test.ts.

function credential(overrides: Partial<ActiveCredential> = {}): ActiveCredential {
  return { kind: 'session', sub: 'u1', username: 'alice', scopes: ['read'], clientId: null, aud: null, iat: 0, exp: null, invalidatedBy: ['session:d1', 'user:u1'], links: [{ type: 'session', digest: 'd1' }], ...overrides };
}

function setup(options: { maxEntries?: number; activeTtlMs?: number; inactiveTtlMs?: number } = {}) {
  let now = 1_000_000;
  const table = new Map<string, ActiveCredential | null>();
  let lookups = 0;
  const gate = createGate();
  const underlying: CredentialVerifier = {
    async verify(value) {
      lookups += 1;
      const answer = table.get(value) ?? null;
      await gate.passed();
      return answer;
    },
  };
  const cache = createCachedCredentialVerifier(underlying, { maxEntries: options.maxEntries ?? 100, activeTtlMs: options.activeTtlMs ?? 60_000, inactiveTtlMs: options.inactiveTtlMs ?? 5_000, clock: () => now });
  cache.channelState('up');
  return {
    cache,
    table,
    lookups: () => lookups,
    advance: (ms: number) => (now += ms),
    now: () => now,
    hold: gate.hold,
  };
}

describe('the credential cache', () => {
  it('answers a DPoP-bound token only to callers that check proofs, from one lookup, and an unbound one at once to all', async () => {
    const t = setup();
    t.table.set('bound', credential({ kind: 'access_token', clientId: 'cli', jkt: 'thumbprint' }));
    t.table.set('refresh', credential({ kind: 'refresh_token', clientId: 'cli', jkt: 'thumbprint' }));
    t.table.set('plain', credential({ kind: 'access_token', clientId: 'cli' }));
    expect(await t.cache.verify('bound')).toBeNull();
    expect(await t.cache.verify('bound', { senderConstrained: true })).toMatchObject({ jkt: 'thumbprint' });
    expect(await t.cache.verify('refresh', { refreshTokens: true })).toBeNull();
    expect(await t.cache.verify('refresh', { refreshTokens: true, senderConstrained: true })).toMatchObject({ kind: 'refresh_token', jkt: 'thumbprint' });
    expect(await t.cache.verify('refresh', { senderConstrained: true })).toBeNull();
    expect(t.lookups()).toBe(2);
    // The fast path stays what it was: an unbound token from memory, not a promise, whatever the caller.
    await t.cache.verify('plain');
    for (const options of [{}, { senderConstrained: true }, { refreshTokens: true, senderConstrained: true }]) {
      const answer = t.cache.verify('plain', options);
      expect(isPromise(answer)).toBe(false);
      expect(answer).toMatchObject({ kind: 'access_token' });
    }
    expect(t.lookups()).toBe(3);
  });

  it('answers a repeated lookup from memory until its TTL ends', async () => {
    const t = setup({ activeTtlMs: 1000 });
    t.table.set('tok', credential());
    await t.cache.verify('tok');
    await t.cache.verify('tok');
    expect(t.lookups()).toBe(1);
    t.advance(1001);
    await t.cache.verify('tok');
    expect(t.lookups()).toBe(2);
  });

  it("never keeps an answer past the credential's exp", async () => {
    const t = setup({ activeTtlMs: 60_000 });
    t.table.set('tok', credential({ exp: Math.floor(t.now() / 1000) + 2 }));
    expect(await t.cache.verify('tok')).not.toBeNull();
    t.table.set('tok', null); // what the store says once it has expired
    t.advance(2000);
    expect(await t.cache.verify('tok')).toBeNull();
  });

  it('drops every answer that depends on an invalidated target, and only those', async () => {
    const t = setup();
    t.table.set('a', credential({ invalidatedBy: ['session:a', 'user:u1'] }));
    t.table.set('b', credential({ invalidatedBy: ['pat:b', 'user:u1'] }));
    t.table.set('c', credential({ sub: 'u2', invalidatedBy: ['pat:c', 'user:u2'] }));
    for (const token of ['a', 'b', 'c']) await t.cache.verify(token);
    t.table.set('a', null);
    t.table.set('b', null);
    t.cache.invalidate(['user:u1']);
    expect(await t.cache.verify('a')).toBeNull();
    expect(await t.cache.verify('b')).toBeNull();
    expect(await t.cache.verify('c')).not.toBeNull();
    expect(t.lookups()).toBe(5);
  });

  it('does not store an answer whose lookup was running when an invalidation arrived', async () => {
    const t = setup();
    t.table.set('tok', credential());
    const release = t.hold();
    const racing = t.cache.verify('tok'); // reads "active" before the revocation...
    await Promise.resolve();
    t.table.set('tok', null);
    t.cache.invalidate(['session:d1']); // ...which is announced while the lookup is in flight
    release();
    expect(await racing).not.toBeNull();
    expect(await t.cache.verify('tok')).toBeNull();
  });

  it('serves nothing from memory while the channel is down, and starts afresh when it is back', async () => {
    const t = setup();
    t.table.set('tok', credential());
    await t.cache.verify('tok');
    t.cache.channelState('down');
    expect(t.cache.stats()).toMatchObject({ entries: 0, serving: false });
    await t.cache.verify('tok');
    await t.cache.verify('tok');
    expect(t.lookups()).toBe(3);
    expect(t.cache.stats().entries).toBe(0);
    t.cache.channelState('up');
    await t.cache.verify('tok');
    await t.cache.verify('tok');
    expect(t.lookups()).toBe(4);
  });

  it('keeps inactive answers only briefly', async () => {
    const t = setup({ inactiveTtlMs: 500 });
    await t.cache.verify('unknown');
    await t.cache.verify('unknown');
    expect(t.lookups()).toBe(1);
    t.advance(501);
    await t.cache.verify('unknown');
    expect(t.lookups()).toBe(2);
  });

  it('holds at most maxEntries answers, evicting the oldest', async () => {
    const t = setup({ maxEntries: 3 });
    for (const token of ['a', 'b', 'c', 'd']) await t.cache.verify(token);
    expect(t.cache.stats().entries).toBe(3);
    await t.cache.verify('a');
    expect(t.lookups()).toBe(5);
  });

  it('shares one lookup between concurrent callers of the same token', async () => {
    const t = setup();
    t.table.set('tok', credential());
    const release = t.hold();
    const answers = Promise.all([t.cache.verify('tok'), t.cache.verify('tok'), t.cache.verify('tok')]);
    release();
    expect((await answers).every((a) => a?.sub === 'u1')).toBe(true);
    expect(t.lookups()).toBe(1);
  });

  it('answers a refresh token only to callers that count refresh tokens', async () => {
    const t = setup();
    t.table.set('rt', credential({ kind: 'refresh_token' }));
    expect(await t.cache.verify('rt', { refreshTokens: true })).toMatchObject({ kind: 'refresh_token' });
    expect(await t.cache.verify('rt')).toBeNull();
    expect(await t.cache.verify('rt', { refreshTokens: false })).toBeNull();
  });

  it('answers at once from memory only, counted as a hit, else with a promise: a lookup before, none once invalidated, expired or while the channel is down', async () => {
    const t = setup({ activeTtlMs: 1000 });
    const counted = { refreshTokens: true };
    t.table.set('tok', credential());
    t.table.set('rt', credential({ kind: 'refresh_token' }));
    const first = t.cache.verify('tok', counted);
    expect(isPromise(first)).toBe(true);
    const active = await first;
    expect(t.cache.verify('tok', counted)).toBe(active);
    expect(t.cache.stats()).toMatchObject({ hits: 1, misses: 1 });
    await t.cache.verify('unknown');
    expect(t.cache.verify('unknown', counted)).toBeNull();
    // Refresh tokens are answered as the caller counts them.
    await t.cache.verify('rt', counted);
    expect(t.cache.verify('rt', counted)).toMatchObject({ kind: 'refresh_token' });
    expect(t.cache.verify('rt')).toBeNull();
    // What no lookup could make active is answered at once, without one.
    expect(t.cache.verify('', counted)).toBeNull();
    expect(t.cache.verify('x'.repeat(4097), counted)).toBeNull();
    expect(t.lookups()).toBe(3);
    t.cache.invalidate(['session:d1']);
    const invalidated = t.cache.verify('tok', counted);
    expect(isPromise(invalidated)).toBe(true);
    await invalidated;
    t.advance(1001);
    const expired = t.cache.verify('tok', counted);
    expect(isPromise(expired)).toBe(true);
    await expired;
    t.cache.channelState('down');
    const bypassed = t.cache.verify('tok', counted);
    expect(isPromise(bypassed)).toBe(true);
    await bypassed;
    expect(t.lookups()).toBe(6); // the sixth: the lookup while the channel is down
  });
});
