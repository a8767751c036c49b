import type { IncomingHttpHeaders } from 'node:http';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import type { ActiveCredential } from './credential-verifier.ts';
import { DPOP_ALGORITHMS } from '../oauth/dpop-algorithms.ts';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { checkDpopProof, DpopNonceRequired, DpopProofError } from './dpop-proof.ts';

// The one rule of every path of Tessera that accepts access tokens (forward-auth, /api/v1/me,
// userinfo): a DPoP-bound token (RFC 9449) is good only under the DPoP scheme with a proof of its
// key for this request; under Bearer it is refused, and the DPoP scheme takes only bound tokens.

/** The scheme an access token came with. */
export type TokenScheme = 'bearer' | 'dpop';

/** The token of an `Authorization: DPoP …` header (RFC 9449 §7.1; the scheme in any case), or undefined. */
export function dpopAuthorizationToken(header: string | undefined): string | undefined {
  return /^dpop\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}

/**
 * The method and absolute URL of the request a gateway forwards to forward-auth: X-Original-Method
 * (or Traefik's X-Forwarded-Method), X-Forwarded-Proto, X-Forwarded-Host (else Host) and
 * X-Original-URI (or X-Forwarded-Uri). The URL is null when a part is missing.
 */
export function forwardedRequest(headers: IncomingHttpHeaders): { method: string; url: string | null } {
  const first = (name: string) => {
    const value = headers[name];
    const text = Array.isArray(value) ? value[0] : value;
    return text?.split(',')[0]?.trim() || undefined;
  };
  const method = first('x-original-method') ?? first('x-forwarded-method') ?? '';
  const proto = first('x-forwarded-proto');
  const host = first('x-forwarded-host') ?? first('host');
  const path = first('x-original-uri') ?? first('x-forwarded-uri');
  if (!proto || !host || !path?.startsWith('/') || (proto !== 'http' && proto !== 'https')) return { method, url: null };
  return { method, url: URL.parse(`${proto}://${host}${path}`)?.href ?? null };
}

/** The DPoP header's values (a repeated header is refused by the check). */
export function dpopProofs(headers: IncomingHttpHeaders): string[] {
  const value = headers.dpop;
  if (value === undefined) return [];
  // node joins repeated unknown headers with ', '; a compact JWT holds no comma.
  return (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

/** The WWW-Authenticate challenge of a refusal at a resource path (RFC 9449 §7.1, RFC 6750 §3). */
export function dpopChallenge(error: 'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce', description?: string): string {
  const text = description ? `, error_description="${description.replace(/["\\]/g, '')}"` : '';
  return `DPoP algs="${DPOP_ALGORITHMS.join(' ')}", error="${error}"${text}`;
}

/** A refusal: status 401, and the headers to send (the challenge; a nonce to use when one is asked for). */
export class SenderConstraintRefusal extends Error {
  readonly error: 'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce';
  readonly headers: Record<string, string>;
  constructor(error: 'invalid_token' | 'invalid_dpop_proof' | 'use_dpop_nonce', description: string, nonce?: string) {
    super(description);
    this.error = error;
    this.headers = { 'WWW-Authenticate': dpopChallenge(error, description), ...(nonce ? { 'DPoP-Nonce': nonce } : {}) };
  }
}

/**
 * Nonces of Tessera's resource paths (RFC 9449 §9): an HMAC of the time step under a key every node
 * derives alike, good for the current step and the one before, so any node accepts any node's.
 */
export function createResourceNonces(secret: Buffer, stepSeconds: number) {
  const of = (step: number) => `${step.toString(36)}.${createHmac('sha256', secret).update(`resource nonce ${step}`).digest('base64url')}`;
  const stepAt = (nowMs: number) => Math.floor(nowMs / 1000 / stepSeconds);
  return {
    current: (nowMs: number) => of(stepAt(nowMs)),
    valid(nonce: unknown, nowMs: number): boolean {
      if (typeof nonce !== 'string' || nonce.length > 128) return false;
      const given = Buffer.from(nonce);
      return [stepAt(nowMs), stepAt(nowMs) - 1].some((step) => {
        const expected = Buffer.from(of(step));
        return expected.length === given.length && timingSafeEqual(expected, given);
      });
    },
  };
}

export interface PresentedToken {
  token: string;
  scheme: TokenScheme;
  /** The request as its client sent it: method, absolute URL, headers (for the proof). */
  method: string;
  url: string | null;
  headers: IncomingHttpHeaders;
}

export interface SenderConstraintDependencies {
  ephemeral: Pick<EphemeralStore, 'set'>;
  /** How far a proof's iat may be from now, in seconds. */
  proofMaxAgeSeconds: number;
  /** Given: proofs must carry one of these nonces (createResourceNonces). */
  nonces?: ReturnType<typeof createResourceNonces> | undefined;
  clock?: () => number;
}

/** Where a spent proof is remembered (one key per key thumbprint and jti; a digest). */
const PROOF_KEY = 'dpop-proof:';

export type SenderConstraintCheck = (active: ActiveCredential, presented: PresentedToken) => Promise<void>;

/**
 * Checks an active credential against how it was presented. An unbound credential under Bearer
 * costs nothing (no store round trip); a bound one needs the DPoP scheme and a proof, whose jti is
 * claimed once for every node (SET NX).
 */
export function createSenderConstraintCheck(deps: SenderConstraintDependencies): SenderConstraintCheck {
  const clock = deps.clock ?? Date.now;
  const { nonces } = deps;
  const claimProof = (id: string, ttlSeconds: number) => deps.ephemeral.set(`${PROOF_KEY}${id}`, '1', { onlyIfAbsent: true, ttlMs: ttlSeconds * 1000 });
  return async (active, presented) => {
    if (active.jkt === undefined) {
      if (presented.scheme === 'dpop') throw new SenderConstraintRefusal('invalid_token', 'the token is not DPoP-bound: send it as a Bearer token');
      return;
    }
    if (presented.scheme === 'bearer') throw new SenderConstraintRefusal('invalid_token', 'the token is DPoP-bound: send it with the DPoP scheme and a proof');
    if (presented.url === null) throw new SenderConstraintRefusal('invalid_dpop_proof', 'the URL of the request is unknown');
    try {
      await checkDpopProof(
        { proofs: dpopProofs(presented.headers), method: presented.method, url: presented.url, accessToken: presented.token, jkt: active.jkt },
        { maxAgeSeconds: deps.proofMaxAgeSeconds, claimProof, clock, ...(nonces ? { nonceValid: nonces.valid } : {}) },
      );
    } catch (error) {
      if (error instanceof DpopNonceRequired) throw new SenderConstraintRefusal('use_dpop_nonce', error.message, nonces!.current(clock()));
      if (error instanceof DpopProofError) throw new SenderConstraintRefusal('invalid_dpop_proof', error.message);
      throw error;
    }
  };
}
