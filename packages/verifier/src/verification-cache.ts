import { hash } from 'node:crypto';

/** The cache key of a token: its SHA-256, so the cache never holds a usable credential. */
export function tokenDigest(token: string): string {
  return hash('sha256', token, 'base64url');
}

interface Entry<V> {
  value: V;
  /** Milliseconds since the epoch after which the entry is gone. */
  expiresAt: number;
}

/**
 * A bounded least-recently-used map with a deadline per entry. The caller picks each deadline (a
 * short TTL, never past the token's own `exp`); an entry at or past its deadline is never served.
 * Map iteration order is insertion order, so re-inserting on a hit keeps the oldest entry first.
 */
export function createVerificationCache<V>({ maxEntries, clock }: { maxEntries: number; clock: () => number }) {
  const entries = new Map<string, Entry<V>>();
  return {
    get(key: string): V | undefined {
      const entry = entries.get(key);
      if (!entry) return undefined;
      entries.delete(key);
      if (entry.expiresAt <= clock()) return undefined;
      entries.set(key, entry);
      return entry.value;
    },
    set(key: string, value: V, expiresAt: number): void {
      entries.delete(key);
      if (maxEntries <= 0 || expiresAt <= clock()) return;
      entries.set(key, { value, expiresAt });
      while (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
    },
    delete(key: string): void {
      entries.delete(key);
    },
    clear(): void {
      entries.clear();
    },
    get size(): number {
      return entries.size;
    },
  };
}

export type VerificationCache<V> = ReturnType<typeof createVerificationCache<V>>;
