import { Redis } from 'ioredis';
import type { EphemeralStore } from '../../src/store/ephemeral-store.ts';
import { createRedisEphemeralStore } from '../../src/store/redis-ephemeral-store.ts';
import { dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix } from '../support/services.ts';
import { describeOidcAdapterContract, type StoredKey } from './oidc-adapter.contract.ts';

function openStore(keyPrefix: string): Promise<EphemeralStore> {
  return createRedisEphemeralStore({ url: TEST_REDIS_URL, keyPrefix, connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
}

describeOidcAdapterContract('Redis', async () => {
  const keyPrefix = uniqueRedisPrefix();
  const store = await openStore(keyPrefix);
  const peers: EphemeralStore[] = [];
  const raw = new Redis(TEST_REDIS_URL, { lazyConnect: true });
  await raw.connect();
  return {
    store,
    openPeer: async () => {
      const peer = await openStore(keyPrefix);
      peers.push(peer);
      return peer;
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
      await Promise.all([store, ...peers].map((s) => s.close()));
      await raw.quit();
      await dropRedisPrefix(keyPrefix);
    },
  };
});
