import type { ConnectionState } from '../store/ephemeral-store.ts';
import { invalidationTarget, type InvalidationSubscriber } from '../introspection/invalidations.ts';
import type { OidcClientMetadata } from './client-service.ts';

export interface ClientMetadataCacheOptions {
  /** How long a client's metadata is kept (default 30 s); invalidations end it sooner. */
  ttlMs?: number;
  /** How long "no such client" is kept (default 5 s). */
  unknownTtlMs?: number;
  maxEntries?: number;
  clock?: () => number;
}

export type ClientMetadataCache = InvalidationSubscriber & {
  /** The client's oidc-provider metadata (a fresh copy each time), or undefined. */
  findOidcMetadata(clientId: string): Promise<OidcClientMetadata | undefined>;
};

/**
 * Client metadata in memory for the hot paths (token endpoint, introspection callers, the
 * credential verifier), instead of a database query per request. A client created, deleted or
 * re-keyed publishes an invalidation that drops it on every node at once; while the invalidation
 * channel is down, every lookup goes to the database. Declared clients never change at run time.
 */
export function createClientMetadataCache(find: (clientId: string) => Promise<OidcClientMetadata | undefined>, options: ClientMetadataCacheOptions = {}): ClientMetadataCache {
  const clock = options.clock ?? Date.now;
  const ttlMs = options.ttlMs ?? 30_000;
  const unknownTtlMs = Math.min(ttlMs, options.unknownTtlMs ?? 5_000);
  const maxEntries = options.maxEntries ?? 10_000;
  const entries = new Map<string, { json: string | undefined; until: number }>();
  const prefix = invalidationTarget.client('');
  let serving = false;
  let generation = 0;

  // Kept as JSON and parsed on every hit: oidc-provider gets an object of its own (of this realm),
  // which it may keep or change without touching the cache.
  const copy = (json: string | undefined) => (json === undefined ? undefined : (JSON.parse(json) as OidcClientMetadata));

  return {
    async findOidcMetadata(clientId) {
      const now = clock();
      const cached = serving ? entries.get(clientId) : undefined;
      if (cached && cached.until > now) return copy(cached.json);
      const startedAt = generation;
      const metadata = await find(clientId);
      const json = metadata === undefined ? undefined : JSON.stringify(metadata);
      if (serving && generation === startedAt) {
        entries.delete(clientId);
        if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
        entries.set(clientId, { json, until: now + (json === undefined ? unknownTtlMs : ttlMs) });
      }
      return copy(json);
    },

    invalidate(targets) {
      generation += 1;
      for (const target of targets) {
        if (target.startsWith(prefix)) entries.delete(target.slice(prefix.length));
      }
    },

    channelState(state: ConnectionState) {
      generation += 1;
      entries.clear();
      serving = state === 'up';
    },
  };
}
