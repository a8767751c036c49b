import { invalidationTarget } from '../cache/invalidations.ts';
import { createRecordCache, type RecordCache } from '../cache/record-cache.ts';
import type { OidcClientMetadata } from './client-service.ts';

export type ClientMetadataCache = Omit<RecordCache<OidcClientMetadata>, 'get' | 'peek' | 'peekNow'> & {
  /** The client's oidc-provider metadata (a fresh copy each time), or undefined. */
  findOidcMetadata(clientId: string): Promise<OidcClientMetadata | undefined>;
  /** The same, for reading only (shared, frozen): for the paths that only look. */
  peekOidcMetadata(clientId: string): Promise<Readonly<OidcClientMetadata> | undefined>;
  /** peekOidcMetadata's answer when it is in memory now; null for a client known not to exist, undefined when it would have to be loaded. */
  peekOidcMetadataNow(clientId: string): Readonly<OidcClientMetadata> | null | undefined;
};

/**
 * Client metadata in memory for the hot paths (token endpoint, introspection callers, the
 * credential verifier), instead of a database query per request. A client created, deleted or
 * re-keyed publishes its invalidation target, which drops it on every node at once. Each caller
 * gets an object of its own, which oidc-provider may keep or change. Declared clients never change
 * at run time.
 */
export function createClientMetadataCache(find: (clientId: string) => Promise<OidcClientMetadata | undefined>, options: { clock?: () => number } = {}): ClientMetadataCache {
  const cache = createRecordCache<OidcClientMetadata>({ load: find, target: invalidationTarget.client, ...options });
  return {
    invalidate: (targets) => cache.invalidate(targets),
    channelState: (state) => cache.channelState(state),
    async findOidcMetadata(clientId) {
      return (await cache.get(clientId)) ?? undefined;
    },
    async peekOidcMetadata(clientId) {
      return (await cache.peek(clientId)) ?? undefined;
    },
    peekOidcMetadataNow(clientId) {
      return cache.peekNow(clientId);
    },
  };
}
