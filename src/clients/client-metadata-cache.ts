import { invalidationTarget } from '../cache/invalidations.ts';
import { createRecordCache, type RecordCache } from '../cache/record-cache.ts';
import { thenNow, type Awaitable } from '../shared/awaitable.ts';
import type { OidcClientMetadata } from './client-service.ts';

export type ClientMetadataCache = Omit<RecordCache<OidcClientMetadata>, 'get' | 'peek'> & {
  /** The client's oidc-provider metadata (a fresh copy each time), or undefined. */
  findOidcMetadata(clientId: string): Promise<OidcClientMetadata | undefined>;
  /** The same for reading only (shared, frozen), at once when memory holds it: for the paths that only look. */
  peekOidcMetadata(clientId: string): Awaitable<Readonly<OidcClientMetadata> | undefined>;
};

const orUndefined = <T>(record: T | null) => record ?? undefined;

/**
 * Client metadata in memory for the hot paths (token endpoint, introspection callers, the
 * credential verifier) instead of a database query per request; a client created, deleted or
 * re-keyed is dropped on every node at once by its invalidation target. Declared clients never
 * change at run time.
 */
export function createClientMetadataCache(find: (clientId: string) => Promise<OidcClientMetadata | undefined>, options: { clock?: () => number } = {}): ClientMetadataCache {
  const cache = createRecordCache<OidcClientMetadata>({ load: find, target: invalidationTarget.client, ...options });
  return {
    invalidate: (targets) => cache.invalidate(targets),
    channelState: (state) => cache.channelState(state),
    async findOidcMetadata(clientId) {
      return (await cache.get(clientId)) ?? undefined;
    },
    peekOidcMetadata: (clientId) => thenNow(cache.peek(clientId), orUndefined),
  };
}
