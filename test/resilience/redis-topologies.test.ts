import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
import { startTopology, TOPOLOGIES, type RedisTopology } from '../support/redis-topologies.ts';

// The topologies themselves: fail() takes Redis away, restored() waits until it serves again, and
// what was written before the outage is still there (persistence, or the replica's copy).

/** A client for the topology's env, failing fast while Redis is away. */
function connect(env: Record<string, string>): Redis | Cluster {
  const options = { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 100 };
  const addresses = (list: string) => list.split(',').map((hostPort) => ({ host: hostPort.split(':')[0]!, port: Number(hostPort.split(':')[1]) }));
  if (env.REDIS_CLUSTER_NODES) {
    const cluster = new Cluster(addresses(env.REDIS_CLUSTER_NODES), { lazyConnect: true, enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 0 }, clusterRetryStrategy: () => 100 });
    cluster.on('error', () => undefined);
    return cluster;
  }
  const client = env.REDIS_URL
    ? new Redis(env.REDIS_URL, options)
    : new Redis({
        ...options,
        sentinels: addresses(env.REDIS_SENTINELS!),
        name: env.REDIS_SENTINEL_MASTER!,
        sentinelRetryStrategy: () => 100,
      });
  client.on('error', () => undefined);
  return client;
}

async function until(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(TOPOLOGIES)('the %s topology', (name) => {
  let topology: RedisTopology;
  let client: Redis | Cluster;
  beforeAll(async () => {
    topology = await startTopology(name);
    client = connect(topology.env);
    await client.connect();
  }, 60_000);
  afterAll(async () => {
    client?.disconnect();
    await topology?.stop();
  });

  it('fails, serves again, and keeps what was written before', async () => {
    expect(await client.set('before', 'kept')).toBe('OK');
    const failedAt = await topology.fail();
    await until('a command failing', 10_000, async () => {
      try {
        // On a cluster, a command fails only on the dead master's slots: keys of every master.
        if (client instanceof Cluster) await Promise.all(Array.from({ length: 16 }, (_, index) => client.get(`probe-${index}`)));
        else await client.ping();
        return false;
      } catch {
        return true;
      }
    });
    const restoredAt = await topology.restored();
    expect(restoredAt).toBeGreaterThanOrEqual(failedAt);
    await until('the value read back', 15_000, async () => (await client.get('before')) === 'kept');
  });
});
