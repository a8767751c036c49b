import { describe, expect, it } from '@jest/globals';
import { createNonces, createProofReplayCache, normalisedHtu } from '../src/dpop.ts';

describe('@tessera/verifier: DPoP helpers', () => {
  it('refuses a proof seen before, and while full refuses anything no younger than what it let go', () => {
    const cache = createProofReplayCache(2);
    const now = 1_000_000;
    expect(cache.claim('a', 990, now + 60_000, now)).toBe(true);
    expect(cache.claim('a', 990, now + 60_000, now)).toBe(false);
    expect(cache.claim('b', 995, now + 60_000, now)).toBe(true);
    // Full: `a` (iat 990) goes, and nothing of iat 990 or before is accepted any more.
    expect(cache.claim('c', 998, now + 60_000, now)).toBe(true);
    expect(cache.claim('a', 990, now + 60_000, now)).toBe(false);
    expect(cache.claim('d', 985, now + 60_000, now)).toBe(false);
    // Entries past their time go without raising the floor.
    expect(cache.claim('e', 999, now + 200_000, now + 120_000)).toBe(true);
    expect(cache.claim('f', 996, now + 200_000, now + 120_000)).toBe(true);
  });

  it('normalises htu as RFC 9449 §4.3 compares it', () => {
    expect(normalisedHtu('HTTPS://API.Example.org:443/a/%7euser/../b?q=1#f')).toBe('https://api.example.org/a/b');
    expect(normalisedHtu('https://api.example.org/%2f')).toBe('https://api.example.org/%2F');
    expect(normalisedHtu('ftp://x/')).toBeNull();
    expect(normalisedHtu('/relative')).toBeNull();
  });

  it('accepts its own nonce for the current step and the one before, and no other', () => {
    const nonces = createNonces(60);
    const now = 6_000_000;
    const nonce = nonces.current(now);
    expect(nonces.valid(nonce, now)).toBe(true);
    expect(nonces.valid(nonce, now + 60_000)).toBe(true);
    expect(nonces.valid(nonce, now + 120_000)).toBe(false);
    expect(nonces.valid(createNonces(60).current(now), now)).toBe(false);
    expect(nonces.valid(undefined, now)).toBe(false);
  });
});
