import { Redis } from 'ioredis';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { createRedisEphemeralStore } from '../../src/store/redis/redis-ephemeral-store.ts';
import { dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix } from '../support/services.ts';
import { dumpRedisPrefix } from '../support/stored-keys.ts';
import { describeOidcAdapterContract } from './oidc-adapter.contract.ts';

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
    dump: () => dumpRedisPrefix(raw, keyPrefix),
    cleanup: async () => {
      await Promise.all([store, ...peers].map((s) => s.close()));
      await raw.quit();
      await dropRedisPrefix(keyPrefix);
    },
  };
});
