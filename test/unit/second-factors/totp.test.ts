import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { base32Decode, base32Encode, hotp, matchingTotpStep, normaliseTotpCode, otpauthUri, totpStep } from '../../../src/second-factors/totp.ts';
import { oathtoolHotp, oathtoolTotp } from '../../support/oathtool.ts';

// Tessera's TOTP against Debian's oathtool, an implementation of its own: the same codes for the
// same secrets and times, and the RFC 6238 test vector (SHA-1 key "12345678901234567890").

describe('TOTP', () => {
  it('gives RFC 6238 Appendix B (SHA-1) codes, cut to 6 digits', () => {
    const key = Buffer.from('12345678901234567890');
    // The RFC lists 8 digits; the last 6 of each are the 6-digit codes.
    const vectors: [number, string][] = [[59, '94287082'], [1111111109, '07081804'], [1234567890, '89005924'], [2000000000, '69279037']];
    for (const [seconds, code] of vectors) expect(hotp(key, totpStep(seconds * 1000))).toBe(code.slice(2));
  });

  it('agrees with oathtool on random secrets and times', () => {
    for (let i = 0; i < 5; i++) {
      const secret = randomBytes(20);
      const at = Date.parse('2027-01-01T00:00:00Z') + i * 7_919_000;
      expect(matchingTotpStep(secret, oathtoolTotp(base32Encode(secret), at), at)).toBe(totpStep(at));
      expect(hotp(secret, i * 1000)).toBe(oathtoolHotp(secret.toString('hex'), i * 1000));
    }
  });

  it('accepts one step either side of now and no further', () => {
    const secret = randomBytes(20);
    const base32 = base32Encode(secret);
    const now = Date.parse('2027-03-03T12:00:10Z');
    expect(matchingTotpStep(secret, oathtoolTotp(base32, now - 30_000), now)).toBe(totpStep(now) - 1);
    expect(matchingTotpStep(secret, oathtoolTotp(base32, now + 30_000), now)).toBe(totpStep(now) + 1);
    const farAway = oathtoolTotp(base32, now - 90_000);
    // (A far code may equal a near one by chance, one in a million per step.)
    const near = [-1, 0, 1].map((d) => oathtoolTotp(base32, now + d * 30_000));
    if (!near.includes(farAway)) expect(matchingTotpStep(secret, farAway, now)).toBeNull();
  });

  it('reads codes as typed and refuses what is not one', () => {
    expect(normaliseTotpCode(' 123 456 ')).toBe('123456');
    expect(normaliseTotpCode('123-456')).toBe('123456');
    expect(normaliseTotpCode('12345')).toBeNull();
    expect(normaliseTotpCode('abcdef')).toBeNull();
  });

  it('encodes base32 both ways, and the URI apps read', () => {
    const secret = randomBytes(20);
    expect(base32Decode(base32Encode(secret)).equals(secret)).toBe(true);
    expect(base32Encode(Buffer.from('foobar'))).toBe('MZXW6YTBOI');
    const uri = new URL(otpauthUri({ secret, issuer: 'repo.example.org', account: 'alice' }));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('secret')).toBe(base32Encode(secret));
    expect(uri.searchParams.get('issuer')).toBe('repo.example.org');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/repo.example.org:alice');
  });
});
