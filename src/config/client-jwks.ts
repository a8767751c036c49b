// A client's public keys for private_key_jwt: what Tessera accepts (public signing keys only,
// proven to parse) and keeps (the public members only), and the thumbprint that names a key.
import { createHash, createPublicKey } from 'node:crypto';
import { z } from 'zod';

/**
 * A public key a client registers for private_key_jwt (RFC 7523), as Tessera keeps it: only the
 * members below; anything else a tool adds (x5c, key_ops, ext, …) is left out.
 */
export interface ClientPublicJwk {
  kty: 'RSA' | 'EC' | 'OKP';
  kid?: string;
  use?: 'sig';
  alg?: string;
  /** RSA */
  n?: string;
  e?: string;
  /** EC and OKP */
  crv?: string;
  x?: string;
  /** EC */
  y?: string;
}

/** The public keys of a client that authenticates with private_key_jwt. */
export interface ClientJwks {
  keys: ClientPublicJwk[];
}

export const CLIENT_JWKS_MAX_KEYS = 10;
export const CLIENT_RSA_MIN_BITS = 2048;
const CLIENT_RSA_MAX_BITS = 16384;

/** The members that make a JWK private (RSA d p q dp dq qi oth, EC/OKP d, oct k). */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** The signing algorithms each key type allows in a JWK's optional `alg`. */
const ALGS_BY_KEY_TYPE: Record<string, readonly string[]> = {
  RSA: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  'EC P-256': ['ES256'],
  'EC P-384': ['ES384'],
  'EC P-521': ['ES512'],
  'OKP Ed25519': ['EdDSA', 'Ed25519'],
};

/** The members of the RFC 7638 thumbprint of each key type, in their canonical (sorted) order. */
const THUMBPRINT_MEMBERS: Record<ClientPublicJwk['kty'], readonly (keyof ClientPublicJwk)[]> = {
  RSA: ['e', 'kty', 'n'],
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
};

const KEY_TYPES_HELP = `an RSA (${CLIENT_RSA_MIN_BITS} bits or more), EC (P-256, P-384, P-521) or OKP (Ed25519) public key`;

/** The RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key: a stable name for it. */
export function jwkThumbprint(jwk: ClientPublicJwk): string {
  const canonical = `{${THUMBPRINT_MEMBERS[jwk.kty].map((member) => `${JSON.stringify(member)}:${JSON.stringify(jwk[member])}`).join(',')}}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

const isBase64url = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && /^[A-Za-z0-9_-]+$/.test(value);

/**
 * Checks one JWK of a client's set: its problems (path inside the key, message), or the public
 * key Tessera keeps. A private key is refused outright, never stripped down to its public part:
 * whoever pasted it has exposed it and should know.
 */
function checkClientJwk(value: unknown): { problems: { path: (string | number)[]; message: string }[]; key?: ClientPublicJwk } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problems: [{ path: [], message: 'must be a JWK (a JSON object)' }] };
  const jwk = value as Record<string, unknown>;
  if (jwk.kty === 'oct') {
    return { problems: [{ path: ['kty'], message: `"oct" is a shared secret, not a public key: treat it as exposed, and give ${KEY_TYPES_HELP}` }] };
  }
  const privateMembers = PRIVATE_JWK_MEMBERS.filter((member) => Object.hasOwn(jwk, member));
  if (privateMembers.length) {
    return {
      problems: [
        {
          path: [],
          message:
            `is a private key (it has ${privateMembers.map((m) => `"${m}"`).join(', ')}): register only the PUBLIC key. ` +
            'Treat this private key as exposed and generate a new key pair.',
        },
      ],
    };
  }
  const problems: { path: (string | number)[]; message: string }[] = [];
  const problem = (path: string, message: string) => problems.push({ path: [path], message });
  const { kty, crv } = jwk;
  let keyType: string;
  if (kty === 'RSA') {
    keyType = 'RSA';
    if (!isBase64url(jwk.n)) problem('n', 'must be the base64url modulus of the RSA key');
    if (!isBase64url(jwk.e)) problem('e', 'must be the base64url exponent of the RSA key');
  } else if (kty === 'EC') {
    keyType = `EC ${String(crv)}`;
    if (crv !== 'P-256' && crv !== 'P-384' && crv !== 'P-521') problem('crv', 'must be P-256, P-384 or P-521 for an EC key');
    if (!isBase64url(jwk.x)) problem('x', 'must be the base64url x coordinate of the EC key');
    if (!isBase64url(jwk.y)) problem('y', 'must be the base64url y coordinate of the EC key');
  } else if (kty === 'OKP') {
    keyType = `OKP ${String(crv)}`;
    if (crv !== 'Ed25519') problem('crv', 'must be Ed25519 for an OKP key (signing keys only)');
    if (!isBase64url(jwk.x)) problem('x', 'must be the base64url public key of the OKP key');
  } else {
    return { problems: [{ path: ['kty'], message: `${kty === undefined ? 'is missing' : `${JSON.stringify(kty)} is not accepted`}: give ${KEY_TYPES_HELP}` }] };
  }
  if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid.length < 1 || jwk.kid.length > 200)) problem('kid', 'must be a string of 1–200 characters');
  if (jwk.use !== undefined && jwk.use !== 'sig') problem('use', `must be "sig" (the key verifies signed assertions), not ${JSON.stringify(jwk.use)}`);
  if (jwk.alg !== undefined) {
    const allowed = ALGS_BY_KEY_TYPE[keyType] ?? [];
    if (typeof jwk.alg !== 'string' || !allowed.includes(jwk.alg)) problem('alg', `${JSON.stringify(jwk.alg)} does not fit ${keyType === 'RSA' ? 'an RSA' : `an ${keyType}`} key (allowed: ${allowed.join(', ') || 'none'})`);
  }
  if (problems.length) return { problems };

  const key: ClientPublicJwk =
    kty === 'RSA'
      ? { kty, n: jwk.n as string, e: jwk.e as string }
      : kty === 'EC'
        ? { kty, crv: crv as string, x: jwk.x as string, y: jwk.y as string }
        : { kty: 'OKP', crv: crv as string, x: jwk.x as string };
  if (jwk.kid !== undefined) key.kid = jwk.kid as string;
  if (jwk.use !== undefined) key.use = 'sig';
  if (jwk.alg !== undefined) key.alg = jwk.alg as string;
  // Proves the key material is a valid key (a point on the curve, a well-formed modulus).
  try {
    const parsed = createPublicKey({ key: { ...key } as never, format: 'jwk' });
    const bits = parsed.asymmetricKeyDetails?.modulusLength;
    if (kty === 'RSA' && (bits === undefined || bits < CLIENT_RSA_MIN_BITS)) {
      return { problems: [{ path: ['n'], message: `the RSA modulus has ${bits ?? 'an unknown number of'} bits: at least ${CLIENT_RSA_MIN_BITS} are required` }] };
    }
    if (kty === 'RSA' && bits! > CLIENT_RSA_MAX_BITS) return { problems: [{ path: ['n'], message: `the RSA modulus has ${bits} bits: at most ${CLIENT_RSA_MAX_BITS} are accepted` }] };
  } catch {
    return { problems: [{ path: [], message: `is not a valid ${keyType} public key` }] };
  }
  return { problems, key };
}

/**
 * A client's public keys for private_key_jwt: a JWK Set of 1–10 keys, each RSA (2048 bits or
 * more), EC (P-256, P-384, P-521) or OKP (Ed25519), with no private member, `use` "sig" if
 * given, and distinct `kid`s and keys. Output: the keys as Tessera keeps them (public members only).
 */
export const clientJwksSchema = z
  .custom<Record<string, unknown>>((value) => typeof value === 'object' && value !== null && !Array.isArray(value), {
    message: 'must be a JWK Set: {"keys": [ …public JWKs… ]}',
  })
  .transform((value, context): ClientJwks => {
    const keys = value.keys;
    if (!Array.isArray(keys)) {
      const hint = 'kty' in value ? ' (this looks like a single JWK: put it in {"keys": [ … ]})' : '';
      context.addIssue({ code: 'custom', path: ['keys'], message: `must be an array of public JWKs${hint}` });
      return z.NEVER;
    }
    if (keys.length < 1 || keys.length > CLIENT_JWKS_MAX_KEYS) {
      context.addIssue({ code: 'custom', path: ['keys'], message: `must hold 1 to ${CLIENT_JWKS_MAX_KEYS} keys, not ${keys.length}` });
      return z.NEVER;
    }
    const checked: ClientPublicJwk[] = [];
    const kids = new Map<string, number>();
    const thumbprints = new Map<string, number>();
    keys.forEach((entry: unknown, index) => {
      const { problems, key } = checkClientJwk(entry);
      for (const { path, message } of problems) context.addIssue({ code: 'custom', path: ['keys', index, ...path], message });
      if (!key) return;
      if (key.kid !== undefined) {
        const first = kids.get(key.kid);
        if (first !== undefined) context.addIssue({ code: 'custom', path: ['keys', index, 'kid'], message: `"${key.kid}" is also the kid of key ${first}: kids must be unique` });
        else kids.set(key.kid, index);
      }
      const thumbprint = jwkThumbprint(key);
      const same = thumbprints.get(thumbprint);
      if (same !== undefined) context.addIssue({ code: 'custom', path: ['keys', index], message: `is the same key as key ${same}` });
      else thumbprints.set(thumbprint, index);
      checked.push(key);
    });
    return { keys: checked };
  });
