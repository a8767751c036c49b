import { timingSafeEqual } from 'node:crypto';
import { sha256Hex } from '../shared/sha256.ts';
import { randomBase62 } from '../credentials/token-format.ts';

export { randomBase62 };

/** What every client secret starts with, so that secret scanners and people recognise one. */
export const CLIENT_SECRET_PREFIX = 'tsr_cs_';

/** 43 base62 characters carry 43 × log2(62) ≈ 256.03 bits. */
const SECRET_CHARACTERS = 43;

/** The shape of a generated client secret. */
export const CLIENT_SECRET_PATTERN = /^tsr_cs_[0-9A-Za-z]{43}$/;

/** A new client secret: `tsr_cs_` and 256 random bits in base62. Shown once, stored as a digest. */
export function generateClientSecret(): string {
  return `${CLIENT_SECRET_PREFIX}${randomBase62(SECRET_CHARACTERS)}`;
}

/** The hex SHA-256 of a secret: what the database and oidc-provider's client metadata hold. */
export function digestClientSecret(secret: string): string {
  return sha256Hex(secret);
}

/**
 * Whether `presented` is the secret whose digest is `digestHex`. The comparison is between two
 * 32-byte digests with crypto.timingSafeEqual, so its time reveals nothing about either value;
 * a malformed digest never matches.
 */
export function secretMatches(digestHex: string, presented: string): boolean {
  if (typeof digestHex !== 'string' || typeof presented !== 'string' || !/^[0-9a-f]{64}$/i.test(digestHex)) return false;
  // (Hex, then bytes: crypto.hash answers hex faster than a Buffer.)
  const expected = Buffer.from(digestHex, 'hex');
  const actual = Buffer.from(sha256Hex(presented), 'hex');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
