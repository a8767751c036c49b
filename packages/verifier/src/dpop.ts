import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import { quoted } from './error-response.ts';

// DPoP (RFC 9449) at a resource server: the proof that comes with a DPoP-bound access token is
// checked as §7.1 and §4.3 say — signature by the embedded key, typ, htm, htu, iat within a
// window, ath, the key's thumbprint against the token's cnf.jkt, and a jti used once (in this
// process: a bounded cache). Optional resource-server nonces (§9). Mirrors Tessera's own check
// (src/introspection/dpop-proof.ts) without importing it.

/** The algorithms proofs may be signed with (what Tessera advertises). */
export const DPOP_ALGORITHMS = ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256'];

const MAX_PROOF_LENGTH = 8192;

/** Why a proof is refused, or that a nonce is wanted first. */
export class DpopRefusal extends Error {
  readonly error: 'invalid_dpop_proof' | 'use_dpop_nonce';
  constructor(error: 'invalid_dpop_proof' | 'use_dpop_nonce', message: string) {
    super(message);
    this.error = error;
  }
}

/** A `WWW-Authenticate: DPoP …` challenge (RFC 9449 §7.1). */
export function dpopChallenge(params: Record<string, string> = {}): string {
  return ['DPoP', [`algs=${quoted(DPOP_ALGORITHMS.join(' '))}`, ...Object.entries(params).map(([name, value]) => `${name}=${quoted(value)}`)].join(', ')].join(' ');
}

/** A URL as htu compares it: no query or fragment, normalised (scheme, host, default port, percent-encoding); null if no http(s) URL. */
export function normalisedHtu(value: string): string | null {
  const url = URL.parse(value);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) return null;
  url.search = '';
  url.hash = '';
  url.username = '';
  url.password = '';
  url.pathname = url.pathname.replace(/%[0-9a-fA-F]{2}/g, (escape) => {
    const char = String.fromCharCode(Number.parseInt(escape.slice(1), 16));
    return /[A-Za-z0-9\-._~]/.test(char) ? char : escape.toUpperCase();
  });
  return url.href;
}

/**
 * The proofs seen, each until it would be too old anyway: a proof whose key and jti are here is a
 * replay. Bounded: when full, the oldest goes, and from then on proofs no younger than it are
 * refused as too old, so that nothing evicted can be replayed (the window narrows under a flood).
 */
export function createProofReplayCache(maxEntries: number) {
  const seen = new Map<string, { until: number; iat: number }>();
  let floorIat = -Infinity;
  return {
    /** Marks the proof used: false when it was, or when it is no younger than what was evicted. */
    claim(id: string, iat: number, keepUntilMs: number, nowMs: number): boolean {
      if (iat <= floorIat || seen.has(id)) return false;
      // The oldest first: drop what has run out, and while full, what has not (raising the floor).
      for (const [key, entry] of seen) {
        const live = entry.until > nowMs;
        if (live && seen.size < maxEntries) break;
        seen.delete(key);
        if (live) floorIat = Math.max(floorIat, entry.iat);
      }
      seen.set(id, { until: keepUntilMs, iat });
      return true;
    },
    clear(): void {
      seen.clear();
    },
  };
}

/**
 * Nonces this resource server hands out (RFC 9449 §9): an HMAC of a time step under a key of this
 * process, good for the current step and the one before.
 */
export function createNonces(stepSeconds: number) {
  const key = randomBytes(32);
  const of = (step: number) => `${step.toString(36)}.${createHmac('sha256', key).update(String(step)).digest('base64url')}`;
  return {
    current: (nowMs: number) => of(Math.floor(nowMs / 1000 / stepSeconds)),
    valid(nonce: unknown, nowMs: number): boolean {
      if (typeof nonce !== 'string' || nonce.length > 128) return false;
      const step = Math.floor(nowMs / 1000 / stepSeconds);
      return [step, step - 1].some((candidate) => {
        const expected = Buffer.from(of(candidate));
        const given = Buffer.from(nonce);
        return given.length === expected.length && timingSafeEqual(given, expected);
      });
    },
  };
}

export interface ProofCheck {
  proofs: string[];
  method: string;
  url: string;
  accessToken: string;
  jkt: string;
}

export interface ProofCheckOptions {
  maxAgeSeconds: number;
  replay: ReturnType<typeof createProofReplayCache>;
  nonces: ReturnType<typeof createNonces> | undefined;
  nowMs: number;
}

/** Checks a proof; resolves, or throws DpopRefusal. */
export async function checkProof(check: ProofCheck, options: ProofCheckOptions): Promise<void> {
  if (check.proofs.length !== 1) throw new DpopRefusal('invalid_dpop_proof', check.proofs.length ? 'send exactly one DPoP proof' : 'a DPoP-bound token needs a DPoP proof');
  const proof = check.proofs[0]!;
  let payload;
  let header;
  try {
    if (proof.length > MAX_PROOF_LENGTH || !DPOP_ALGORITHMS.includes(String(decodeProtectedHeader(proof).alg))) throw new Error('unsupported');
    ({ payload, protectedHeader: header } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: DPOP_ALGORITHMS }));
  } catch {
    throw new DpopRefusal('invalid_dpop_proof', 'invalid DPoP proof');
  }
  if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > 256) throw new DpopRefusal('invalid_dpop_proof', 'the DPoP proof needs a jti');
  if (typeof payload.iat !== 'number') throw new DpopRefusal('invalid_dpop_proof', 'the DPoP proof needs an iat');
  if (payload.htm !== check.method) throw new DpopRefusal('invalid_dpop_proof', 'the DPoP proof is for another method');
  const expected = normalisedHtu(check.url);
  if (!expected || typeof payload.htu !== 'string' || normalisedHtu(payload.htu) !== expected) throw new DpopRefusal('invalid_dpop_proof', 'the DPoP proof is for another URL');
  if (Math.abs(options.nowMs / 1000 - payload.iat) > options.maxAgeSeconds) throw new DpopRefusal('invalid_dpop_proof', 'the DPoP proof is too old or from the future');
  if (payload.ath !== createHash('sha256').update(check.accessToken, 'ascii').digest('base64url')) throw new DpopRefusal('invalid_dpop_proof', 'the DPoP proof is for another access token');
  if ((await calculateJwkThumbprint(header.jwk!)) !== check.jkt) throw new DpopRefusal('invalid_dpop_proof', 'the DPoP proof is signed by a key the token is not bound to');
  if (options.nonces && !options.nonces.valid(payload.nonce, options.nowMs)) throw new DpopRefusal('use_dpop_nonce', 'the DPoP proof needs a current nonce of this server');
  const id = createHash('sha256').update(`${check.jkt}.${payload.jti}`).digest('base64url');
  if (!options.replay.claim(id, payload.iat, options.nowMs + options.maxAgeSeconds * 2000 + 1000, options.nowMs)) throw new DpopRefusal('invalid_dpop_proof', 'the DPoP proof was used before');
}
