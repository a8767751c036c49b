import { startPrivateCluster } from './private-cluster.ts';
import { startRestartableRedis } from './private-redis.ts';
import { startPrivateSentinel, type Address } from './private-sentinel.ts';

// The Redis set-ups Tessera supports, each of a test file's own, behind one shape, so that a
// resilience scenario runs unchanged on every one (describe.each(TOPOLOGIES)).

export type TopologyName = 'single' | 'sentinel' | 'cluster';

export interface RedisTopology {
  name: TopologyName;
  /** Settings for a Tessera on it: REDIS_URL, or REDIS_SENTINELS + REDIS_SENTINEL_MASTER, or REDIS_CLUSTER_NODES. */
  env: Record<string, string>;
  /** Takes Redis away (single: kill -9 the server; sentinel: kill -9 the master; cluster: kill -9 one master); resolves with the time it happened. */
  fail(): Promise<number>;
  /** Resolves, with the time, once Redis serves again (single: restarted on the same port; sentinel: a replica promoted; cluster: the failover done). */
  restored(): Promise<number>;
  stop(): Promise<void>;
}

/** The topologies this machine runs. */
export const TOPOLOGIES: TopologyName[] = ['single', 'sentinel', 'cluster'];

/** How long a Sentinel or cluster failover may take before restored() gives up. */
const FAILOVER_TIMEOUT_MS = 30_000;

async function startSingle(): Promise<RedisTopology> {
  const redis = await startRestartableRedis();
  return {
    name: 'single',
    env: { REDIS_URL: redis.url },
    async fail() {
      await redis.kill();
      return Date.now();
    },
    async restored() {
      await redis.restart();
      return Date.now();
    },
    stop: () => redis.stop(),
  };
}

async function startSentinel(): Promise<RedisTopology> {
  const sentinel = await startPrivateSentinel();
  let killed: Address | undefined;
  return {
    name: 'sentinel',
    env: sentinel.env,
    async fail() {
      // The replica first takes every write acknowledged so far: the scenario tests Tessera across
      // a failover, not what Redis's asynchronous replication may lose.
      await sentinel.waitForReplication();
      killed = await sentinel.killMaster();
      return Date.now();
    },
    async restored() {
      if (!killed) throw new Error('restored() before fail()');
      await sentinel.waitForNewMaster(killed, FAILOVER_TIMEOUT_MS);
      return Date.now();
    },
    stop: () => sentinel.stop(),
  };
}

async function startCluster(): Promise<RedisTopology> {
  const cluster = await startPrivateCluster();
  let killed: Address | undefined;
  return {
    name: 'cluster',
    env: cluster.env,
    async fail() {
      // As for Sentinel: the replicas first take every write acknowledged so far.
      await cluster.waitForReplication();
      killed = await cluster.killMaster();
      return Date.now();
    },
    async restored() {
      if (!killed) throw new Error('restored() before fail()');
      await cluster.waitForFailover(killed, undefined, FAILOVER_TIMEOUT_MS);
      return Date.now();
    },
    stop: () => cluster.stop(),
  };
}

export function startTopology(name: TopologyName): Promise<RedisTopology> {
  switch (name) {
    case 'single':
      return startSingle();
    case 'sentinel':
      return startSentinel();
    case 'cluster':
      return startCluster();
  }
}
