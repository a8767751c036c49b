import { sha256Base64url } from '../shared/sha256.ts';
import type { ConnectionState } from '../store/ephemeral/ephemeral-store.ts';
import { withoutBoundTokens, type ActiveCredential, type CredentialVerifier, type VerifyOptions } from './credential-verifier.ts';
import { thenNow, type Awaitable } from '../shared/awaitable.ts';
import type { InvalidationSubscriber } from '../cache/invalidations.ts';

/** Longer values are no credential Tessera issues: inactive without a lookup. */
const MAX_VALUE_LENGTH = 4096;

const withoutRefreshTokens = (active: ActiveCredential | null) => (active?.kind === 'refresh_token' ? null : active);
/** What a caller that counts no refresh tokens and checks no proofs is answered: bound tokens are inactive. */
const bearerOnly = (active: ActiveCredential | null) => (active?.kind === 'refresh_token' || active?.jkt !== undefined ? null : active);

export interface CredentialCacheOptions {
  /** Most answers kept; the oldest go first. */
  maxEntries: number;
  /** How long an active answer is kept (never past the credential's own exp). */
  activeTtlMs: number;
  /** How long an inactive answer is kept (unknown and revoked tokens, floods of them). */
  inactiveTtlMs: number;
  clock?: () => number;
}

interface Entry {
  active: ActiveCredential | null;
  /** Milliseconds since the epoch after which the entry is not served. */
  until: number;
}

export interface CredentialCacheStats {
  entries: number;
  hits: number;
  misses: number;
  /** False while the invalidation channel is down (or not yet up): every lookup goes to the stores. */
  serving: boolean;
}

export type CachedCredentialVerifier = CredentialVerifier &
  InvalidationSubscriber & {
    stats(): CredentialCacheStats;
    flush(): void;
  };

/**
 * The credential verifier's answers in memory, for every resource server's hot path
 * (introspection, forward-auth), and safely: never past the credential's exp nor activeTtlMs; an
 * invalidation naming anything an answer depends on (its invalidatedBy) drops it on every node; a
 * lookup that raced an invalidation is not stored (a generation counter); while the invalidation
 * channel is down nothing is served, and the cache is flushed as it goes down and as it comes back.
 * Keys are SHA-256 digests: memory never indexes raw tokens. An answer in memory comes at once, not
 * as a promise (docs/architecture.md#speed-devices).
 */
export function createCachedCredentialVerifier(verifier: CredentialVerifier, options: CredentialCacheOptions): CachedCredentialVerifier {
  const clock = options.clock ?? Date.now;
  const entries = new Map<string, Entry>();
  /** target → digests of the entries that depend on it. */
  const dependents = new Map<string, Set<string>>();
  const inFlight = new Map<string, Promise<ActiveCredential | null>>();
  let generation = 0;
  let serving = false;
  let hits = 0;
  let misses = 0;

  function remove(digest: string) {
    const entry = entries.get(digest);
    if (!entry) return;
    entries.delete(digest);
    for (const target of entry.active?.invalidatedBy ?? []) {
      const set = dependents.get(target);
      set?.delete(digest);
      if (set?.size === 0) dependents.delete(target);
    }
  }

  function store(digest: string, active: ActiveCredential | null, now: number) {
    const ttl = active ? options.activeTtlMs : options.inactiveTtlMs;
    const until = Math.min(now + ttl, active?.exp != null ? active.exp * 1000 : Infinity);
    if (until <= now || options.maxEntries <= 0) return;
    remove(digest);
    while (entries.size >= options.maxEntries) {
      const oldest = entries.keys().next().value;
      if (oldest === undefined) break;
      remove(oldest);
    }
    entries.set(digest, { active, until });
    for (const target of active?.invalidatedBy ?? []) {
      let set = dependents.get(target);
      if (!set) dependents.set(target, (set = new Set()));
      set.add(digest);
    }
  }

  function flush() {
    generation += 1;
    entries.clear();
    dependents.clear();
    inFlight.clear();
  }

  /** The entry for this digest while it may be served (counted as a hit), else undefined (an expired one is dropped). */
  function fresh(digest: string): Entry | undefined {
    const entry = entries.get(digest);
    if (!entry) return undefined;
    if (entry.until > clock()) {
      hits += 1;
      return entry;
    }
    remove(digest);
    return undefined;
  }

  /** The answer with refresh tokens counted; callers that do not count them filter it. */
  function lookup(value: string, options: VerifyOptions): Awaitable<ActiveCredential | null> {
    if (!serving) return verifier.verify(value, { ...options, refreshTokens: true, senderConstrained: true });
    const digest = sha256Base64url(value);
    const entry = fresh(digest);
    if (entry) return entry.active;
    misses += 1;
    const pending = inFlight.get(digest);
    if (pending) return pending;
    const startedAt = generation;
    const promise = Promise.resolve(verifier.verify(value, { ...options, refreshTokens: true, senderConstrained: true })).then(
      (active) => {
        if (inFlight.get(digest) === promise) inFlight.delete(digest);
        if (serving && generation === startedAt) store(digest, active, clock());
        return active;
      },
      (error: unknown) => {
        if (inFlight.get(digest) === promise) inFlight.delete(digest);
        throw error;
      },
    );
    inFlight.set(digest, promise);
    return promise;
  }

  return {
    verify(value, verifyOptions = {}) {
      if (!value || value.length > MAX_VALUE_LENGTH) return null;
      const active = lookup(value, verifyOptions);
      if (verifyOptions.refreshTokens) return verifyOptions.senderConstrained ? active : thenNow(active, (found) => withoutBoundTokens(found, verifyOptions));
      return thenNow(active, verifyOptions.senderConstrained ? withoutRefreshTokens : bearerOnly);
    },

    invalidate(targets) {
      generation += 1;
      inFlight.clear();
      for (const target of targets) {
        const set = dependents.get(target);
        if (!set) continue;
        for (const digest of [...set]) remove(digest);
      }
    },

    channelState(state: ConnectionState) {
      flush();
      serving = state === 'up';
    },

    stats() {
      return { entries: entries.size, hits, misses, serving };
    },

    flush,
  };
}
