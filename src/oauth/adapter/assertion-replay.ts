import { sha256Base64url } from '../../shared/sha256.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { oidcKeyFor } from './oidc-keys.ts';

/**
 * Marks a client assertion (RFC 7523) used: true for the first use of this issuer and jti, false for
 * every other, however many arrive at once (one SET NX, kept until the assertion expires). Shared by
 * oidc-provider (internals.ts replaces its ReplayDetection.unique) and the introspection endpoint.
 */
export async function claimClientAssertion(store: EphemeralStore, issuer: string, jti: string, expSeconds: number, nowSeconds: number): Promise<boolean> {
  // oidc-provider's ReplayDetection id: SHA-256 of the issuer and jti, base64url.
  const id = sha256Base64url(`${issuer}${jti}`);
  const record = JSON.stringify({ iss: issuer, kind: 'ReplayDetection', iat: nowSeconds, exp: expSeconds });
  return store.set(oidcKeyFor('ReplayDetection', id), record, { onlyIfAbsent: true, ttlMs: Math.max(expSeconds - nowSeconds, 1) * 1000 });
}
