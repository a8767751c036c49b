import { Redis } from 'ioredis';
import { createRedisEphemeralStore } from '../../src/store/redis/redis-ephemeral-store.ts';
import { dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix } from '../support/services.ts';
import { dumpRedisPrefix } from '../support/stored-keys.ts';
import { describeApiSessionStoreContract } from './api-session-store.contract.ts';

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
    dump: () => dumpRedisPrefix(raw, keyPrefix),
    cleanup: async () => {
      await store.close();
      await raw.quit();
      await dropRedisPrefix(keyPrefix);
    },
  };
});
