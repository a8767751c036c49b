import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import { sha256Base64url } from '../shared/sha256.ts';
import { DPOP_ALGORITHMS } from '../oauth/dpop-algorithms.ts';

// A DPoP proof (RFC 9449 §4.3) presented with a bound access token at one of Tessera's resource
// paths (forward-auth, /api/v1/me, userinfo): the checks a resource server makes (§7.1), with the
// replay check left to the caller's store (one SET NX shared by every node).

/** Longest proof looked at: a proof carries one public key, never kilobytes. */
const MAX_PROOF_LENGTH = 8192;

export interface DpopRequest {
  /** The DPoP header's values: exactly one is a proof. */
  proofs: readonly string[];
  /** The HTTP method of the request the token was sent with. */
  method: string;
  /** The URL of that request, as its client addressed it (scheme, host, path; the query is ignored). */
  url: string;
  accessToken: string;
  /** The token's confirmation (its `cnf.jkt`). */
  jkt: string;
}

export interface DpopProofOptions {
  /** How far a proof's iat may be from now, in seconds, either way. */
  maxAgeSeconds: number;
  /**
   * Marks a proof used (true) or says it was already (false), atomically for every node; `ttlSeconds`
   * outlives the proof's acceptance window.
   */
  claimProof: (id: string, ttlSeconds: number) => Promise<boolean>;
  /** Given: the proof must carry a nonce this accepts (resource-server nonces, RFC 9449 §9). */
  nonceValid?: (nonce: unknown, nowMs: number) => boolean;
  clock?: () => number;
}

/** Why a proof is refused: a description for the client (never the proof itself). */
export class DpopProofError extends Error {}

/** A proof that would do but for its nonce: the client is to send it again with a current one. */
export class DpopNonceRequired extends DpopProofError {}

/**
 * A URL as htu compares it (RFC 9449 §4.3, RFC 3986 §6.2.2/§6.2.3): without query and fragment,
 * scheme and host in lower case, default ports dropped, dot segments resolved, percent-encoding
 * normalised; null when it is no absolute http(s) URL.
 */
export function normalisedHtu(value: string): string | null {
  const url = URL.parse(value);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) return null;
  url.search = '';
  url.hash = '';
  url.username = '';
  url.password = '';
  // Percent-encoded unreserved characters decode to themselves; hex digits in upper case.
  url.pathname = url.pathname.replace(/%[0-9a-fA-F]{2}/g, (escape) => {
    const char = String.fromCharCode(Number.parseInt(escape.slice(1), 16));
    return /[A-Za-z0-9\-._~]/.test(char) ? char : escape.toUpperCase();
  });
  return url.href;
}

/** The `ath` of an access token: base64url SHA-256 of its ASCII value. */
export const accessTokenHash = (token: string) => createHash('sha256').update(token, 'ascii').digest('base64url');

/** Checks a request's DPoP proof against its bound access token; resolves, or throws DpopProofError. */
export async function checkDpopProof(request: DpopRequest, options: DpopProofOptions): Promise<void> {
  const clock = options.clock ?? Date.now;
  if (request.proofs.length !== 1) throw new DpopProofError(request.proofs.length ? 'send exactly one DPoP proof' : 'a DPoP-bound token needs a DPoP proof');
  const proof = request.proofs[0]!;
  if (proof.length > MAX_PROOF_LENGTH) throw new DpopProofError('invalid DPoP proof');
  let payload;
  let header;
  try {
    // jose refuses a JWK holding private parts and checks typ; the algorithm must be one listed.
    if (!DPOP_ALGORITHMS.includes(decodeProtectedHeader(proof).alg as never)) throw new DpopProofError('unsupported DPoP proof algorithm');
    ({ payload, protectedHeader: header } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [...DPOP_ALGORITHMS] }));
  } catch (error) {
    if (error instanceof DpopProofError) throw error;
    throw new DpopProofError('invalid DPoP proof');
  }
  if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > 256) throw new DpopProofError('the DPoP proof needs a jti');
  if (typeof payload.iat !== 'number') throw new DpopProofError('the DPoP proof needs an iat');
  if (payload.htm !== request.method) throw new DpopProofError('the DPoP proof is for another method');
  const expected = normalisedHtu(request.url);
  if (!expected || typeof payload.htu !== 'string' || normalisedHtu(payload.htu) !== expected) throw new DpopProofError('the DPoP proof is for another URL');
  const now = clock() / 1000;
  if (Math.abs(now - payload.iat) > options.maxAgeSeconds) throw new DpopProofError('the DPoP proof is too old or from the future');
  if (payload.ath !== accessTokenHash(request.accessToken)) throw new DpopProofError('the DPoP proof is for another access token');
  if ((await calculateJwkThumbprint(header.jwk!)) !== request.jkt) throw new DpopProofError('the DPoP proof is signed by a key the token is not bound to');
  if (options.nonceValid && !options.nonceValid(payload.nonce, clock())) throw new DpopNonceRequired('the DPoP proof needs a current nonce of this server');
  // Last: only a proof that would have been accepted is spent. One record per key and jti.
  const claimed = await options.claimProof(sha256Base64url(`${request.jkt}.${payload.jti}`), Math.ceil(options.maxAgeSeconds * 2 + 1));
  if (!claimed) throw new DpopProofError('the DPoP proof was used before');
}
