import { Redis, type Cluster } from 'ioredis';
import { createRedisEphemeralStore, type ClusterTarget, type SentinelTarget } from '../../src/store/redis/redis-ephemeral-store.ts';
import { rawClusterClient } from '../support/private-cluster.ts';
import { usePrivateCluster } from '../support/use-private-cluster.ts';
import { dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix } from '../support/services.ts';
import { usePrivateSentinel } from '../support/private-sentinel.ts';
import { dumpRedisPrefix } from '../support/stored-keys.ts';
import { describeApiSessionStoreContract, type ApiSessionStoreFixture } from './api-session-store.contract.ts';

describeApiSessionStoreContract('Redis', () => openFixture(TEST_REDIS_URL));

// The same contract through Redis Sentinel: a master, a replica and three sentinels of this file's own.
const sentinel = usePrivateSentinel();
describeApiSessionStoreContract('Redis through Sentinel', () => {
  const { sentinels, masterName } = sentinel();
  return openFixture({ sentinels, masterName });
});

// And on a Redis Cluster of this file's own (three masters, three replicas): no operation may
// touch keys of two slots (CROSSSLOT).
const cluster = usePrivateCluster();
describeApiSessionStoreContract('Redis Cluster', () => openFixture({ nodes: cluster().nodes }));

/** A store on the shared Redis (a URL), through Sentinel or on a cluster, and a raw connection beside it. */
async function openFixture(target: string | SentinelTarget | ClusterTarget): Promise<ApiSessionStoreFixture> {
  const keyPrefix = uniqueRedisPrefix();
  const where = typeof target === 'string' ? { url: target } : 'nodes' in target ? { cluster: target } : { sentinel: target };
  const store = await createRedisEphemeralStore({ ...where, keyPrefix, connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
  const raw: Redis | Cluster =
    typeof target === 'string' ? new Redis(target, { lazyConnect: true }) : 'nodes' in target ? rawClusterClient(cluster()) : new Redis({ sentinels: target.sentinels, name: target.masterName, lazyConnect: true });
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
      // The private Sentinel set-up and cluster go with their file; the shared Redis is cleaned up after.
      if (typeof target === 'string') await dropRedisPrefix(keyPrefix);
    },
  };
}
