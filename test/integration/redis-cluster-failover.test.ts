import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import type { ConnectionState, EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { createRedisEphemeralStore } from '../../src/store/redis/redis-ephemeral-store.ts';
import { StoreUnavailableError } from '../../src/shared/errors.ts';
import { type Address } from '../support/private-cluster.ts';
import { withRedisClient } from '../support/private-redis.ts';
import { usePrivateCluster } from '../support/use-private-cluster.ts';
import { uniqueRedisPrefix } from '../support/services.ts';

// The Redis ephemeral store on a Redis Cluster of this file's own (three masters, three replicas)
// when nodes lose data or die: the data-loss marker of every master, the subscriber moving to
// another node, and commands failing fast (never hanging) until a replica has taken over.

// The nodes want a password: it must reach every node's connection and no log line.
const PASSWORD = 'cluster-pass-s3cret';
const cluster = usePrivateCluster({ password: PASSWORD });
const COMMAND_TIMEOUT_MS = 2000;

/** A short-lived client to one node of the password-protected cluster. */
const onNode = <T>(address: Address, use: (client: Redis) => Promise<T>): Promise<T> => withRedisClient(address, use, { password: PASSWORD });

async function until(what: string, timeoutMs: number, probe: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the Redis ephemeral store on a Redis Cluster', () => {
  const prefix = uniqueRedisPrefix();
  const warnings: { obj: object; msg: string }[] = [];
  let store: EphemeralStore;
  const states: ConnectionState[] = [];
  const received: string[] = [];
  let dataLost = 0;

  beforeAll(async () => {
    store = await createRedisEphemeralStore({
      cluster: { nodes: cluster().nodes, password: PASSWORD },
      keyPrefix: prefix,
      connectTimeoutMs: 2000,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      heartbeatMs: 200,
      logger: { warn: (obj, msg) => warnings.push({ obj, msg }), info: () => undefined },
    });
    await store.subscribe('invalidate', (message) => received.push(message), { onStateChange: (state) => states.push(state), onDataLost: () => (dataLost += 1) });
  }, 30_000);
  afterAll(async () => {
    await store?.close();
    // Everything the store logged through the failures of this file: never the password.
    expect(warnings.length).toBeGreaterThan(0);
    expect(JSON.stringify(warnings)).not.toContain(PASSWORD);
  });

  it('notices data lost on any one master (one marker per master)', async () => {
    for (const master of await cluster().masters()) {
      const before = dataLost;
      // Only this file's own cluster is ever flushed.
      await onNode(master, (client) => client.flushall());
      await until(`the data loss on ${master.port} noticed`, 10_000, () => dataLost > before);
    }
    expect(warnings.filter((w) => w.msg === 'Redis lost data; dropping what was cached from it').length).toBeGreaterThanOrEqual(3);
    expect(JSON.stringify(warnings)).toMatch(/"redis":"cluster 127\.0\.0\.1:\d+,/);
  }, 40_000);

  it('moves its subscriber to another node when its node dies, says down then up, and hears what is published after', async () => {
    // Where the subscriber is: the node that lists the store's subscriber connection.
    let subscriberNode: Address | undefined;
    for (const master of await cluster().masters()) {
      const clients = await onNode(master, (client) => client.call('CLIENT', 'LIST') as Promise<string>);
      if (clients.includes('name=tessera-subscriber')) subscriberNode = master;
    }
    expect(subscriberNode).toBeDefined();
    await cluster().waitForReplication();
    const statesBefore = states.length;
    const killedAt = performance.now();
    const old = await cluster().killNode(subscriberNode!);
    await until('the subscriber down and up again', 60_000, () => states.slice(statesBefore).join(',') === 'down,up');
    const movedAfterMs = performance.now() - killedAt;
    await cluster().waitForFailover(old, undefined, 60_000).catch(() => undefined);
    // Published on the cluster (any node), heard through the new subscriber node.
    await until('a message published after up heard', 30_000, async () => {
      await store.publish('invalidate', 'after the move').catch(() => undefined);
      return received.includes('after the move');
    });
    // The killed node comes back as a replica of the promoted one (the next test fails it over).
    await cluster().restartNode(old);
    console.info(`Redis Cluster: the subscriber was up again on another node ${Math.round(movedAfterMs)} ms after its node was killed`);
  }, 120_000);

  it('fails commands on a dead master\'s slots fast, with StoreUnavailableError, and serves them again after the promotion', async () => {
    const key = '{failover-probe}:k';
    await store.set(key, 'v', { ttlMs: 600_000 });
    await cluster().waitForReplication();
    const fullKey = prefix + key;
    const old = await cluster().killMaster(fullKey);
    const killedAt = performance.now();
    const promoted = cluster().waitForFailover(old, fullKey, 60_000);
    let promotedYet = false;
    void promoted.then(() => (promotedYet = true), () => undefined);
    const seen = { unavailable: 0, answered: 0, slowestMs: 0 };
    while (!promotedYet) {
      const started = performance.now();
      try {
        expect(await store.get(key)).toBe('v');
        seen.answered += 1;
      } catch (error) {
        expect(error).toBeInstanceOf(StoreUnavailableError);
        seen.unavailable += 1;
      }
      seen.slowestMs = Math.max(seen.slowestMs, performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await promoted;
    await until('the key served again', 30_000, async () => (await store.get(key).catch(() => null)) === 'v');
    const recoveredAfterMs = performance.now() - killedAt;
    // The killed node comes back as the promoted one's replica (the next test fails a master over).
    await cluster().restartNode(old);
    console.info(`Redis Cluster: GET on a killed master's slot: ${seen.unavailable} StoreUnavailableError, ${seen.answered} answered before the promotion; the slowest took ${Math.round(seen.slowestMs)} ms; served again ${Math.round(recoveredAfterMs)} ms after the kill`);
    expect(seen.unavailable).toBeGreaterThan(0);
    // Never a hang: at most the command timeout and its watchdog's quarter, with room for a busy machine.
    expect(seen.slowestMs).toBeLessThan(COMMAND_TIMEOUT_MS * 1.25 + 1000);
  }, 120_000);


  it('fails commands on a frozen master within the command timeout, and serves them again once its replica took over', async () => {
    const key = '{frozen-probe}:k';
    await store.set(key, 'v', { ttlMs: 600_000 });
    await cluster().waitForReplication();
    const frozen = await cluster().masterOf(prefix + key);
    cluster().freezeNode(frozen, true);
    const frozenAt = performance.now();
    try {
      // The node's socket stays open: only the stall watchdog can fail the command.
      const started = performance.now();
      await expect(store.get(key)).rejects.toThrow(/did not answer GET within|unavailable/);
      const failedAfterMs = performance.now() - started;
      expect(failedAfterMs).toBeLessThan(COMMAND_TIMEOUT_MS * 1.25 + 1000);
      await cluster().waitForFailover(frozen, prefix + key, 60_000);
      await until('the key served by the promoted replica', 30_000, async () => (await store.get(key).catch(() => null)) === 'v');
      console.info(`Redis Cluster: a GET on a frozen master failed after ${Math.round(failedAfterMs)} ms; served again ${Math.round(performance.now() - frozenAt)} ms after the freeze`);
    } finally {
      cluster().freezeNode(frozen, false);
    }
  }, 120_000);
});
