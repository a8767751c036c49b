import type { AdapterPayload } from 'oidc-provider';
import { invalidationTarget } from '../../cache/invalidations.ts';
import { createRecordCache, type RecordCache } from '../../cache/record-cache.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { oidcDigest } from './oidc-keys.ts';
import { readPayload } from './stored-payload.ts';

/** Grants by id, in memory on each node. */
export type GrantCache = RecordCache<AdapterPayload>;

/** How long a grant is kept in memory at most; invalidations end it sooner. */
export const GRANT_CACHE_TTL_MS = 30_000;

/**
 * Grants kept in memory between the requests that read them (every refresh, every introspection of
 * a login's tokens); a grant changes once or twice in its life. Correct across nodes as every
 * record cache is: the adapter publishes a grant's target whenever it saves, revokes or removes
 * one. A missing grant is never remembered, and one past its expiry is never answered.
 */
export function createGrantCache(store: EphemeralStore, options: { ttlMs?: number; clock?: () => number } = {}): GrantCache {
  return createRecordCache<AdapterPayload>({
    load: (grantId) => readPayload(store, 'Grant', oidcDigest(grantId), grantId),
    target: invalidationTarget.grant,
    ttlMs: options.ttlMs ?? GRANT_CACHE_TTL_MS,
    missingTtlMs: 0,
    // The store forgets a grant at its expiry; a copy in memory must not outlive it.
    expiresAt: (grant) => (typeof grant.exp === 'number' ? grant.exp * 1000 : undefined),
    ...(options.clock ? { clock: options.clock } : {}),
  });
}
