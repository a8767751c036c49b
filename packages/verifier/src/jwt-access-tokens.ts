import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload, type RemoteJWKSet } from 'jose';
import { TesseraUnavailableError } from './tessera-client.ts';

/** Three base64url segments: what a JWS compact serialisation looks like (Tessera's own tokens never do). */
export const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The algorithms Tessera signs with (oauth.signingAlgorithm). */
export const ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'];

/** Errors that say "could not get the keys", not "the token is bad". */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof errors.JOSEError)) return true; // fetch itself failed
  return error.code === 'ERR_JWKS_TIMEOUT' || error.code === 'ERR_JWKS_INVALID' || error.code === 'ERR_JOSE_GENERIC';
}

export interface IssuerKeySetOptions {
  jwksUri: () => Promise<string>;
  timeoutMs: number;
  fetch: typeof fetch;
}

/**
 * The issuer's published keys (JWKS), fetched once, refetched when a JWT names an unknown key (at
 * most every 30 s); a failure to find where they are is not remembered.
 */
export function createIssuerKeySet(options: IssuerKeySetOptions): () => Promise<RemoteJWKSet> {
  let keys: Promise<RemoteJWKSet> | undefined;
  return () => {
    keys ??= options.jwksUri().then((uri) =>
      createRemoteJWKSet(new URL(uri), {
        timeoutDuration: options.timeoutMs,
        [customFetch]: (url, init) => options.fetch(url, init),
      }),
    );
    keys.catch(() => (keys = undefined));
    return keys;
  };
}

export interface JwtAccessTokenOptions {
  issuer: string;
  audiences: string[];
  keySet: () => Promise<RemoteJWKSet>;
  clock: () => number;
}

/**
 * RFC 9068 JWT access tokens verified without asking Tessera: signature against the issuer's
 * JWKS (createIssuerKeySet), `typ`
 * at+jwt, `iss`, `aud` among the configured audiences, and `exp`. A revoked token, a deleted
 * client or a disabled user is not seen: such a token passes until it expires.
 */
export function createJwtAccessTokenVerifier(options: JwtAccessTokenOptions) {
  const { keySet } = options;

  /** The payload of a valid token; null for an invalid one; throws TesseraUnavailableError without keys. */
  return async function verifyJwt(token: string): Promise<JWTPayload | null> {
    const jwks = await keySet();
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: options.issuer,
        audience: options.audiences,
        typ: 'at+jwt',
        algorithms: ALGORITHMS,
        requiredClaims: ['exp', 'sub', 'client_id'],
        currentDate: new Date(options.clock()),
      });
      return typeof payload.client_id === 'string' && typeof payload.sub === 'string' ? payload : null;
    } catch (error) {
      if (isUnavailable(error)) throw new TesseraUnavailableError(`signing keys: ${(error as Error).message}`, { cause: error });
      return null;
    }
  };
}
