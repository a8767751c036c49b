import { Redis } from 'ioredis';
import { createRedisEphemeralStore } from '../../src/store/redis-ephemeral-store.ts';
import { dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix } from '../support/services.ts';
import { describeApiSessionStoreContract, type StoredKey } from './api-session-store.contract.ts';

describeApiSessionStoreContract('Redis', async () => {
  const keyPrefix = uniqueRedisPrefix();
  const store = await createRedisEphemeralStore({ url: TEST_REDIS_URL, keyPrefix, connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
  const raw = new Redis(TEST_REDIS_URL, { lazyConnect: true });
  await raw.connect();
  // Redis keeps real time (TTLs count down for real); the clock goes to the session store only.
  let now = Date.parse('2030-01-01T00:00:00Z');
  return {
    store,
    clock: () => now,
    advance: (ms) => {
      now += ms;
    },
    /** What Redis itself holds under the prefix: SCAN, then PTTL and the value of each key. */
    dump: async () => {
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
    },
    cleanup: async () => {
      await store.close();
      await raw.quit();
      await dropRedisPrefix(keyPrefix);
    },
  };
});
