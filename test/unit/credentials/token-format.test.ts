import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from '@jest/globals';
import { CHECKSUM_LENGTH, RANDOM_LENGTH, randomBase62, TOKEN_PREFIXES, tokenFormat, type TokenKind } from '../../../src/credentials/token-format.ts';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KINDS: TokenKind[] = ['session', 'personal_access_token'];

/** Written independently of the module: CRC32 as a base62 number, most significant digit first. */
function expectedChecksum(text: string): string {
  let n = BigInt(crc32(text));
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i += 1) {
    out = BASE62[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out;
}

describe('token format', () => {
  it('generates prefix, 32 base62 random characters and a 6-character checksum', () => {
    expect(TOKEN_PREFIXES).toEqual({ session: 'tsr_ses_', personal_access_token: 'tsr_pat_' });
    expect(tokenFormat.generate('session')).toMatch(/^tsr_ses_[0-9A-Za-z]{38}$/);
    expect(tokenFormat.generate('personal_access_token')).toMatch(/^tsr_pat_[0-9A-Za-z]{38}$/);
  });

  it('carries at least 160 bits of randomness, never repeating', () => {
    expect(RANDOM_LENGTH * Math.log2(62)).toBeGreaterThanOrEqual(160);
    const tokens = Array.from({ length: 2000 }, () => tokenFormat.generate('session'));
    expect(new Set(tokens).size).toBe(tokens.length);
    expect(new Set(tokens.map((t) => t.slice(8, 8 + RANDOM_LENGTH))).size).toBe(tokens.length);
  });

  it('draws the random part uniformly from all 62 characters', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i += 1) {
      for (const character of tokenFormat.generate('session').slice(8, 8 + RANDOM_LENGTH)) counts.set(character, (counts.get(character) ?? 0) + 1);
    }
    expect(counts.size).toBe(62);
    // 64,000 draws: about 1032 per symbol (standard deviation about 32). `byte % 62` without
    // rejection would give the first 8 symbols about 1250 each: past the ±155 allowed here.
    const expected = (2000 * RANDOM_LENGTH) / 62;
    for (const count of counts.values()) expect(Math.abs(count - expected)).toBeLessThan(expected * 0.15);
  });

  it('ends in the CRC32 of prefix and random part, as 6 zero-padded base62 digits', () => {
    for (let i = 0; i < 200; i += 1) {
      const token = tokenFormat.generate(i % 2 ? 'session' : 'personal_access_token');
      const body = token.slice(0, 8 + RANDOM_LENGTH);
      expect(token.slice(body.length)).toBe(expectedChecksum(body));
    }
    // A body whose CRC32 is below 62^5 (about 21 % of them) needs a leading zero to make 6 digits.
    let body = '';
    for (let i = 0; i < 1000 && !(body && crc32(body) < 62 ** 5); i += 1) body = `tsr_ses_${randomBase62(RANDOM_LENGTH)}`;
    expect(crc32(body)).toBeLessThan(62 ** 5);
    const token = body + expectedChecksum(body);
    expect(token.slice(-CHECKSUM_LENGTH)).toMatch(/^0[0-9A-Za-z]{5}$/);
    expect(tokenFormat.parse(token)).toBe('session');
  });

  it('parses the tokens it generates, naming their kind', () => {
    for (const kind of KINDS) {
      for (let i = 0; i < 50; i += 1) expect(tokenFormat.parse(tokenFormat.generate(kind))).toBe(kind);
    }
  });

  it('refuses every single-character substitution in a sample of tokens', () => {
    const alphabet = `${BASE62}_-+/=. `;
    const accepted: string[] = [];
    let tried = 0;
    for (const kind of KINDS) {
      for (let sample = 0; sample < 10; sample += 1) {
        const token = tokenFormat.generate(kind);
        for (let position = 0; position < token.length; position += 1) {
          for (const replacement of alphabet) {
            if (replacement === token[position]) continue;
            const mistyped = token.slice(0, position) + replacement + token.slice(position + 1);
            if (tokenFormat.parse(mistyped) !== null) accepted.push(mistyped);
            tried += 1;
          }
        }
      }
    }
    expect(accepted).toEqual([]);
    expect(tried).toBeGreaterThan(20 * 46 * 60);
  });

  it('refuses a wrong prefix, a wrong length, other characters, and non-strings', () => {
    const token = tokenFormat.generate('session');
    const random = token.slice(8);
    for (const value of [
      '',
      'tsr_ses_',
      `tsr_xyz_${random}`,
      `TSR_SES_${random}`,
      `tsr_cs_${random}`,
      random,
      ` ${token}`,
      `${token} `,
      `${token}A`,
      token.slice(0, -1),
      `tsr_ses_${random.slice(1)}`,
      `tsr_ses_${random}${random}`,
    ]) {
      expect([value, tokenFormat.parse(value)]).toEqual([value, null]);
    }
    // Right length and a correct CRC, but a character outside base62 in the random part.
    const body = `tsr_ses_${'a'.repeat(RANDOM_LENGTH - 1)}-`;
    expect(tokenFormat.parse(body + expectedChecksum(body))).toBeNull();
    // The same random part under the other prefix fails its checksum.
    expect(tokenFormat.parse(`tsr_pat_${random}`)).toBeNull();
    for (const value of [undefined, null, 42, {}, ['tsr_ses_']]) expect(tokenFormat.parse(value as unknown as string)).toBeNull();
  });

  it('digests the whole token with SHA-256, base64url, the same each time', () => {
    const token = tokenFormat.generate('session');
    const digest = tokenFormat.digest(token);
    expect(digest).toBe(createHash('sha256').update(token).digest('base64url'));
    expect(digest).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(tokenFormat.digest(token)).toBe(digest);
    expect(tokenFormat.digest(tokenFormat.generate('session'))).not.toBe(digest);
    expect(tokenFormat.digest('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
  });

  it('hints with the prefix and the first 4 random characters', () => {
    const token = tokenFormat.generate('personal_access_token');
    expect(tokenFormat.hint(token)).toBe(token.slice(0, 12));
    expect(tokenFormat.hint(token)).toMatch(/^tsr_pat_[0-9A-Za-z]{4}$/);
    expect(tokenFormat.hint(tokenFormat.generate('session'))).toMatch(/^tsr_ses_[0-9A-Za-z]{4}$/);
    expect(() => tokenFormat.hint('ghp_0123456789')).toThrow(RangeError);
  });

  it('draws base62 strings of any length', () => {
    expect(randomBase62(0)).toBe('');
    expect(randomBase62(16)).toMatch(/^[0-9A-Za-z]{16}$/);
    expect(randomBase62(1000)).toMatch(/^[0-9A-Za-z]{1000}$/);
    expect(() => randomBase62(-1)).toThrow(RangeError);
  });
});
