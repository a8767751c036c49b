import { randomBytes } from 'node:crypto';
import { sha256Base64url } from '../shared/sha256.ts';
import { crc32 } from 'node:zlib';

/**
 * The format of every secret token Tessera hands to people and scripts (API session tokens,
 * personal access tokens): a fixed prefix per kind, then at least 160 bits of randomness in base62,
 * then a CRC32 checksum in base62. Secret scanners recognise the prefix; a mistyped token fails the
 * checksum and is refused without a lookup. Only a SHA-256 digest of the whole value is stored.
 *
 *   tsr_ses_<32 base62 random characters><6 base62 checksum characters>
 */
export type TokenKind = 'session' | 'personal_access_token';

export const TOKEN_PREFIXES: Record<TokenKind, string> = {
  session: 'tsr_ses_',
  personal_access_token: 'tsr_pat_',
};

/** Characters of randomness: 32 × log2(62) ≈ 190 bits. */
export const RANDOM_LENGTH = 32;
export const CHECKSUM_LENGTH = 6;

export interface TokenFormat {
  /** A new token of this kind. */
  generate(kind: TokenKind): string;
  /** The kind of a well-formed token with a valid checksum, or null (no lookup needed). */
  parse(value: string): TokenKind | null;
  /** SHA-256 of the whole token, base64url: what stores keep and look up by. */
  digest(value: string): string;
  /**
   * The first characters shown to people to recognise a token (prefix + 4). Throws a RangeError
   * for a value without a known prefix: hints are made from tokens Tessera issued.
   */
  hint(value: string): string;
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE62_BODY = /^[0-9A-Za-z]+$/;
/** Characters of the random part shown by hint(). */
const HINT_LENGTH = 4;

/**
 * `length` characters drawn uniformly from the base62 alphabet with crypto.randomBytes. Bytes of
 * 248 and above are rejected (248 = 4 × 62), so that `byte % 62` has no bias.
 */
export function randomBase62(length: number): string {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length must be a whole number >= 0, got ${length}`);
  let result = '';
  while (result.length < length) {
    // About 3 % of bytes are rejected; a little extra avoids a second draw in almost every case.
    for (const byte of randomBytes(Math.ceil((length - result.length) * 1.1) + 4)) {
      if (byte >= 248) continue;
      result += BASE62[byte % 62];
      if (result.length === length) break;
    }
  }
  return result;
}

/** CRC32 of prefix + random part, as exactly CHECKSUM_LENGTH base62 digits (62^6 > 2^32), zero-padded. */
function checksumOf(prefixAndRandom: string): string {
  let value = crc32(prefixAndRandom);
  let digits = '';
  while (value > 0) {
    digits = BASE62[value % 62] + digits;
    value = Math.floor(value / 62);
  }
  return digits.padStart(CHECKSUM_LENGTH, '0');
}

/** The kind whose prefix the value starts with (prefixes are not prefixes of one another). */
function kindOfPrefix(value: string): TokenKind | null {
  for (const kind of Object.keys(TOKEN_PREFIXES) as TokenKind[]) {
    if (value.startsWith(TOKEN_PREFIXES[kind])) return kind;
  }
  return null;
}

export const tokenFormat: TokenFormat = {
  generate(kind) {
    const prefix = TOKEN_PREFIXES[kind];
    if (prefix === undefined) throw new TypeError(`unknown token kind ${JSON.stringify(kind)}`);
    const body = prefix + randomBase62(RANDOM_LENGTH);
    return body + checksumOf(body);
  },

  parse(value) {
    if (typeof value !== 'string') return null;
    const kind = kindOfPrefix(value);
    if (kind === null) return null;
    const prefix = TOKEN_PREFIXES[kind];
    if (value.length !== prefix.length + RANDOM_LENGTH + CHECKSUM_LENGTH) return null;
    if (!BASE62_BODY.test(value.slice(prefix.length))) return null;
    const body = value.slice(0, prefix.length + RANDOM_LENGTH);
    // The checksum only catches typing mistakes; it is no secret, so a plain comparison is fine.
    return value.slice(body.length) === checksumOf(body) ? kind : null;
  },

  digest(value) {
    return sha256Base64url(value);
  },

  hint(value) {
    const kind = kindOfPrefix(value);
    if (kind === null) throw new RangeError('not a Tessera token: it has no known prefix');
    return value.slice(0, TOKEN_PREFIXES[kind].length + HINT_LENGTH);
  },
};
