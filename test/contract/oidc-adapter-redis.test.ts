import { Redis, type Cluster } from 'ioredis';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { createRedisEphemeralStore, type ClusterTarget, type SentinelTarget } from '../../src/store/redis/redis-ephemeral-store.ts';
import { rawClusterClient } from '../support/private-cluster.ts';
import { usePrivateCluster } from '../support/use-private-cluster.ts';
import { usePrivateSentinel } from '../support/private-sentinel.ts';
import { dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix } from '../support/services.ts';
import { dumpRedisPrefix } from '../support/stored-keys.ts';
import { describeOidcAdapterContract, type OidcAdapterFixture } from './oidc-adapter.contract.ts';

describeOidcAdapterContract('Redis', () => openFixture(TEST_REDIS_URL));

// The same contract through Redis Sentinel: a master, a replica and three sentinels of this file's own.
const sentinel = usePrivateSentinel();
describeOidcAdapterContract('Redis through Sentinel', () => {
  const { sentinels, masterName } = sentinel();
  return openFixture({ sentinels, masterName });
});

// And on a Redis Cluster of this file's own (three masters, three replicas): no operation may
// touch keys of two slots (CROSSSLOT).
const cluster = usePrivateCluster();
describeOidcAdapterContract('Redis Cluster', () => openFixture({ nodes: cluster().nodes }));

/** Stores on the shared Redis (a URL), through Sentinel or on a cluster, and a raw connection beside them. */
async function openFixture(target: string | SentinelTarget | ClusterTarget): Promise<OidcAdapterFixture> {
  const keyPrefix = uniqueRedisPrefix();
  const where = typeof target === 'string' ? { url: target } : 'nodes' in target ? { cluster: target } : { sentinel: target };
  const openStore = (): Promise<EphemeralStore> => createRedisEphemeralStore({ ...where, keyPrefix, connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
  const store = await openStore();
  const peers: EphemeralStore[] = [];
  const raw: Redis | Cluster =
    typeof target === 'string' ? new Redis(target, { lazyConnect: true }) : 'nodes' in target ? rawClusterClient(cluster()) : new Redis({ sentinels: target.sentinels, name: target.masterName, lazyConnect: true });
  await raw.connect();
  return {
    store,
    openPeer: async () => {
      const peer = await openStore();
      peers.push(peer);
      return peer;
    },
    dump: () => dumpRedisPrefix(raw, keyPrefix),
    cleanup: async () => {
      await Promise.all([store, ...peers].map((s) => s.close()));
      await raw.quit();
      // The private Sentinel set-up and cluster go with their file; the shared Redis is cleaned up after.
      if (typeof target === 'string') await dropRedisPrefix(keyPrefix);
    },
  };
}
