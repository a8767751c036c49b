import { describe, expect, it, jest } from '@jest/globals';
import * as crypto from 'node:crypto';

// secretMatches must compare with crypto.timingSafeEqual. The real function is wrapped, not
// replaced, so that the test can count calls while every comparison still runs for real.
const timingSafeEqual = jest.fn(crypto.timingSafeEqual);
jest.unstable_mockModule('node:crypto', () => ({ ...crypto, default: crypto, timingSafeEqual }));
const { CLIENT_SECRET_PATTERN, CLIENT_SECRET_PREFIX, digestClientSecret, generateClientSecret, randomBase62, secretMatches } = await import(
  '../../../src/clients/client-secret.ts'
);

describe('client secrets', () => {
  it('start with tsr_cs_ and carry at least 256 bits in base62', () => {
    const secret = generateClientSecret();
    expect(CLIENT_SECRET_PREFIX).toBe('tsr_cs_');
    expect(secret.startsWith('tsr_cs_')).toBe(true);
    expect(secret).toMatch(CLIENT_SECRET_PATTERN);
    expect(secret).toMatch(/^tsr_cs_[0-9A-Za-z]+$/);
    const body = secret.slice('tsr_cs_'.length);
    expect(body.length * Math.log2(62)).toBeGreaterThanOrEqual(256);
  });

  it('never repeat, and use the whole base62 alphabet evenly', () => {
    const secrets = Array.from({ length: 2000 }, generateClientSecret);
    expect(new Set(secrets).size).toBe(secrets.length);
    const counts = new Map<string, number>();
    for (const secret of secrets) for (const character of secret.slice(7)) counts.set(character, (counts.get(character) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // 86,000 draws over 62 symbols: about 1387 each (standard deviation about 37). A modulo bias
    // (byte % 62 over all 256 byte values) would give the first 8 symbols about 1680: past the
    // ±208 allowed here, which honest sampling exceeds with a probability below one in a million.
    const expected = (2000 * 43) / 62;
    for (const count of counts.values()) expect(Math.abs(count - expected)).toBeLessThan(expected * 0.15);
  });

  it('draws base62 strings of any requested length', () => {
    expect(randomBase62(0)).toBe('');
    expect(randomBase62(1)).toMatch(/^[0-9A-Za-z]$/);
    expect(randomBase62(500)).toMatch(/^[0-9A-Za-z]{500}$/);
  });

  it('digest to 64 lower-case hex digits, the sha256sum of the secret', () => {
    expect(digestClientSecret('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(digestClientSecret(generateClientSecret())).toMatch(/^[0-9a-f]{64}$/);
  });

  it('match only the secret they were digested from, comparing in constant time', () => {
    const secret = generateClientSecret();
    const digest = digestClientSecret(secret);
    timingSafeEqual.mockClear();

    expect(secretMatches(digest, secret)).toBe(true);
    expect(secretMatches(digest, `${secret}x`)).toBe(false);
    expect(secretMatches(digest, secret.slice(0, -1))).toBe(false);
    expect(secretMatches(digest, '')).toBe(false);
    expect(secretMatches(digest, digest)).toBe(false);
    expect(timingSafeEqual).toHaveBeenCalledTimes(5);
    // Always two 32-byte digests: equal lengths, whatever the presented secret's length.
    for (const [a, b] of timingSafeEqual.mock.calls) {
      expect((a as Buffer).length).toBe(32);
      expect((b as Buffer).length).toBe(32);
    }
  });

  it('never match against a malformed digest, and never throw', () => {
    const secret = generateClientSecret();
    const digest = digestClientSecret(secret);
    expect(secretMatches(digest.slice(0, 62), secret)).toBe(false);
    expect(secretMatches(`${digest}00`, secret)).toBe(false);
    expect(secretMatches('', secret)).toBe(false);
    expect(secretMatches('z'.repeat(64), secret)).toBe(false);
    expect(secretMatches(undefined as unknown as string, secret)).toBe(false);
    expect(secretMatches(digest, undefined as unknown as string)).toBe(false);
    expect(secretMatches(digest.toUpperCase(), secret)).toBe(true);
  });
});
