import { Cluster, type Redis } from 'ioredis';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { MARKER_KEY_PREFIX } from '../../src/store/redis/data-loss.ts';

/** One key as the backend holds it (logical name: the store's prefix removed). */
export interface StoredKey {
  key: string;
  /** Remaining TTL in ms; Infinity for a key without one. */
  ttlMs: number;
  /** The string value, or the members of a set. */
  values: string[];
}

/**
 * What Redis itself holds under a prefix: SCAN, then PTTL and the value of each key. The Redis
 * store's own data-loss markers (data-loss.ts) are left out: no code under test writes them.
 */
export async function dumpRedisPrefix(raw: Redis | Cluster, keyPrefix: string): Promise<StoredKey[]> {
  const pattern = `${keyPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const found: string[] = [];
  // On a cluster, each master holds its slots' keys.
  for (const server of raw instanceof Cluster ? raw.nodes('master') : [raw]) {
    let cursor = '0';
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      found.push(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
  const held: StoredKey[] = [];
  for (const key of found) {
    if (key.startsWith(keyPrefix + MARKER_KEY_PREFIX)) continue;
    const [type, pttl] = await Promise.all([raw.type(key), raw.pttl(key)]);
    if (pttl === -2) continue; // expired between SCAN and PTTL
    const values = type === 'set' ? await raw.smembers(key) : [(await raw.get(key)) ?? ''];
    held.push({ key: key.slice(keyPrefix.length), ttlMs: pttl === -1 ? Number.POSITIVE_INFINITY : pttl, values });
  }
  return held;
}

/** One call a test saw reach the store: its operation, arguments and the keys it touched. */
export interface StoreCall {
  op: string;
  args: unknown[];
  keys: string[];
}

/** The part of a key Redis Cluster hashes (the first non-empty {...}, else the whole key). */
export function slotPart(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

/** Passes every call through to the store, noting its arguments and which keys it touched. */
export function recording(store: EphemeralStore, calls: StoreCall[]): EphemeralStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const op = String(property);
        const keys =
          op === 'getMany'
            ? (args[0] as string[])
            : op === 'del'
              ? (args as string[])
              : op === 'setWithCompanion' || op === 'setIfAbsentAlongside'
                ? [args[0] as string, op === 'setWithCompanion' ? (args[3] as { key: string }).key : (args[2] as string)]
                : typeof args[0] === 'string'
                  ? [args[0]]
                  : [];
        calls.push({ op, args, keys });
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/**
 * What a store still holds of the keys the recorded calls wrote (for stores that cannot be listed,
 * like the in-process one): TTL and value or set members of each.
 */
export async function dumpWrittenKeys(store: EphemeralStore, calls: StoreCall[]): Promise<StoredKey[]> {
  const written = new Set(calls.filter((c) => c.op === 'set' || c.op === 'addToSet' || c.op === 'setIfAbsentAlongside' || c.op === 'setWithCompanion').flatMap((c) => c.keys));
  const held: StoredKey[] = [];
  for (const key of written) {
    const ttlMs = await store.ttl(key);
    if (ttlMs === null) continue;
    let values: string[];
    try {
      values = [(await store.get(key))!];
    } catch {
      values = await store.setMembers(key);
    }
    held.push({ key, ttlMs, values });
  }
  return held;
}
