import { invalidationTarget, type InvalidationPublisher } from '../../cache/invalidations.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { oidcKeys } from './oidc-keys.ts';

// A JWT access token is not stored, so revoking one without a grant (a client-credentials token;
// a login's JWT ends with its grant) leaves a record by its jti that lives as long as the token.
// Introspection reads the record only when it verifies such a token afresh, not on answers from
// memory: those are dropped on every node by the invalidation published here, as an opaque token's
// are (docs/design/oidc-adapter.md).

/** The record outlives the token by this much (clocks of the nodes a little apart). */
const MARGIN_MS = 60_000;

export interface JwtRevocations {
  /** Records that the token with this jti (expiring at `exp`, epoch seconds) is revoked, and tells every node. */
  revoke(jti: string, exp: number): Promise<void>;
  isRevoked(jti: string): Promise<boolean>;
}

/** Revocation records on the ephemeral store; real time, as oidc-provider stamps the tokens' exp with it. */
export function createJwtRevocations(store: EphemeralStore, invalidate: InvalidationPublisher, onRevoked?: () => void): JwtRevocations {
  return {
    async revoke(jti, exp) {
      const ttlMs = exp * 1000 - Date.now() + MARGIN_MS;
      onRevoked?.();
      try {
        // Durably: a failover must not lose the revocation.
        if (ttlMs > 0) await store.set(oidcKeys.revokedJwt(jti), '1', { ttlMs, durable: true });
      } finally {
        // Also when no replica confirmed it: the master has it, so caches must drop the token.
        await invalidate(invalidationTarget.jwtAccessToken(jti));
      }
    },

    async isRevoked(jti) {
      return (await store.get(oidcKeys.revokedJwt(jti))) !== null;
    },
  };
}
