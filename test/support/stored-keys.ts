import type { Redis } from 'ioredis';

/** One key as the backend holds it (logical name: the store's prefix removed). */
export interface StoredKey {
  key: string;
  /** Remaining TTL in ms; Infinity for a key without one. */
  ttlMs: number;
  /** The string value, or the members of a set. */
  values: string[];
}

/** What Redis itself holds under a prefix: SCAN, then PTTL and the value of each key. */
export async function dumpRedisPrefix(raw: Redis, keyPrefix: string): Promise<StoredKey[]> {
  const pattern = `${keyPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await raw.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  const held: StoredKey[] = [];
  for (const key of found) {
    const [type, pttl] = await Promise.all([raw.type(key), raw.pttl(key)]);
    if (pttl === -2) continue; // expired between SCAN and PTTL
    const values = type === 'set' ? await raw.smembers(key) : [(await raw.get(key)) ?? ''];
    held.push({ key: key.slice(keyPrefix.length), ttlMs: pttl === -1 ? Number.POSITIVE_INFINITY : pttl, values });
  }
  return held;
}
