import { sha256Base64url } from '../../shared/sha256.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { oidcKeyFor } from './oidc-keys.ts';

/**
 * Marks a client assertion (RFC 7523) used: true for the first use of this issuer and jti, false
 * for every other, however many arrive at once (one SET NX). The record is the one oidc-provider's
 * ReplayDetection model keeps, under the same key, so the token and revocation endpoints (through
 * oidc-provider) and the introspection endpoint (Tessera's own) share it: an assertion is
 * accepted once across all of them. It is kept until the assertion expires.
 */
export async function claimClientAssertion(store: EphemeralStore, issuer: string, jti: string, expSeconds: number, nowSeconds: number): Promise<boolean> {
  // oidc-provider's ReplayDetection id: SHA-256 of the issuer and jti, base64url.
  const id = sha256Base64url(`${issuer}${jti}`);
  const record = JSON.stringify({ iss: issuer, kind: 'ReplayDetection', iat: nowSeconds, exp: expSeconds });
  return store.set(oidcKeyFor('ReplayDetection', id), record, { onlyIfAbsent: true, ttlMs: Math.max(expSeconds - nowSeconds, 1) * 1000 });
}
