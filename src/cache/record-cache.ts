import type { ConnectionState } from '../store/ephemeral/ephemeral-store.ts';
import type { InvalidationSubscriber } from './invalidations.ts';
import { isPromise, type Awaitable } from '../shared/awaitable.ts';

export interface RecordCacheOptions<T> {
  /** Reads the record from its store (the database); undefined or null when there is none. */
  load(key: string): Promise<T | undefined | null>;
  /** The invalidation target that names the record with this key (invalidations.ts). */
  target(key: string): string;
  /** How long a record is kept (default 30 s); invalidations end it sooner. */
  ttlMs?: number;
  /** How long "there is none" is kept (default 5 s; 0: never). */
  missingTtlMs?: number;
  /**
   * When a record ends of itself (milliseconds since the epoch), for records that carry their
   * expiry: one past it is answered as none, and none is kept past it.
   */
  expiresAt?(record: T): number | undefined;
  maxEntries?: number;
  clock?: () => number;
}

export type RecordCache<T> = InvalidationSubscriber & {
  /** The record (a fresh copy each time: callers may keep or change it), or null. */
  get(key: string): Promise<T | null>;
  /** The record for reading only (shared and frozen: no copy), or null; at once when memory holds it. */
  peek(key: string): Awaitable<Readonly<T> | null>;
};

interface Entry<T> {
  /** The record as stored (each `get` parses its own copy), or null for "there is none". */
  json: string | null;
  /** The same, parsed once and deep-frozen, for `peek`. */
  value: Readonly<T> | null;
  until: number;
}

function deepFreeze<V>(value: V): V {
  if (value && typeof value === 'object') {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}

/**
 * Records from the database kept in memory for the hot paths, correct across nodes: whatever
 * changes a record publishes its invalidation target, which drops it on every node at once; a
 * load that was running when an invalidation arrived is not kept; while the invalidation channel
 * is down, every read goes to the store. Records are kept as JSON, so each caller gets its own
 * copy (Dates come back as strings: cache plain data only, or revive them in `load`'s caller).
 * Why the hot paths read records this way: docs/architecture.md#record-caches.
 */
export function createRecordCache<T>(options: RecordCacheOptions<T>): RecordCache<T> {
  const clock = options.clock ?? Date.now;
  const ttlMs = options.ttlMs ?? 30_000;
  const missingTtlMs = Math.min(ttlMs, options.missingTtlMs ?? 5_000);
  const maxEntries = options.maxEntries ?? 10_000;
  const entries = new Map<string, Entry<T>>();
  const keysByTarget = new Map<string, string>();
  let serving = false;
  let generation = 0;

  const copy = (json: string | null) => (json === null ? null : (JSON.parse(json) as T));

  const valueOf = (entry: Entry<T>) => entry.value;

  function cachedNow(key: string, now: number): Entry<T> | undefined {
    const cached = serving ? entries.get(key) : undefined;
    return cached && cached.until > now ? cached : undefined;
  }

  function lookup(key: string): Awaitable<Entry<T>> {
    const now = clock();
    return cachedNow(key, now) ?? load(key, now);
  }

  async function load(key: string, now: number): Promise<Entry<T>> {
    const startedAt = generation;
    const loaded = await options.load(key);
    const expiresAt = loaded === undefined || loaded === null ? undefined : options.expiresAt?.(loaded);
    const record = expiresAt !== undefined && expiresAt <= now ? null : loaded;
    const json = record === undefined || record === null ? null : JSON.stringify(record);
    const value = json === null ? null : deepFreeze(JSON.parse(json) as T);
    const until = Math.min(now + (json === null ? missingTtlMs : ttlMs), expiresAt ?? Number.POSITIVE_INFINITY);
    if (serving && generation === startedAt && until > now) {
      entries.delete(key);
      if (entries.size >= maxEntries) {
        const oldest = entries.keys().next().value!;
        entries.delete(oldest);
        keysByTarget.delete(options.target(oldest));
      }
      entries.set(key, { json, value, until });
      keysByTarget.set(options.target(key), key);
    }
    return { json, value, until };
  }

  return {
    async get(key) {
      return copy((await lookup(key)).json);
    },

    peek(key) {
      const entry = lookup(key);
      return isPromise(entry) ? entry.then(valueOf) : entry.value;
    },

    invalidate(targets) {
      generation += 1;
      for (const target of targets) {
        const key = keysByTarget.get(target);
        if (key === undefined) continue;
        keysByTarget.delete(target);
        entries.delete(key);
      }
    },

    channelState(state: ConnectionState) {
      generation += 1;
      entries.clear();
      keysByTarget.clear();
      serving = state === 'up';
    },
  };
}
