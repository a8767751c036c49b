import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { MARKER_KEY_PREFIX } from '../../src/store/redis/data-loss.ts';
import { createRedisEphemeralStore } from '../../src/store/redis/redis-ephemeral-store.ts';
import { usePrivateCluster } from '../support/use-private-cluster.ts';
import { usePrivateSentinel } from '../support/private-sentinel.ts';
import { dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix } from '../support/services.ts';
import { describeEphemeralStoreContract, inbox, waitFor } from './ephemeral-store.contract.ts';

function openStore(keyPrefix: string, logger?: Parameters<typeof createRedisEphemeralStore>[0]['logger']) {
  return createRedisEphemeralStore({ url: TEST_REDIS_URL, keyPrefix, connectTimeoutMs: 2000, commandTimeoutMs: 2000, logger });
}

describeEphemeralStoreContract('Redis', async () => {
  const keyPrefix = uniqueRedisPrefix();
  const store = await openStore(keyPrefix);
  return {
    store,
    cleanup: async () => {
      await store.close();
      await dropRedisPrefix(keyPrefix);
    },
  };
});

// The same contract through Redis Sentinel: a master, a replica and three sentinels of this file's own.
const sentinel = usePrivateSentinel();
describeEphemeralStoreContract('Redis through Sentinel', async () => {
  const { sentinels, masterName } = sentinel();
  const store = await createRedisEphemeralStore({ sentinel: { sentinels, masterName }, keyPrefix: uniqueRedisPrefix(), connectTimeoutMs: 10_000, commandTimeoutMs: 2000 });
  return { store, cleanup: () => store.close() };
});

// And on a Redis Cluster of this file's own (three masters, three replicas).
const cluster = usePrivateCluster();
describeEphemeralStoreContract('Redis Cluster', async () => {
  const store = await createRedisEphemeralStore({ cluster: { nodes: cluster().nodes }, keyPrefix: uniqueRedisPrefix(), connectTimeoutMs: 10_000, commandTimeoutMs: 2000 });
  return { store, cleanup: () => store.close() };
});

// And on a cluster whose nodes speak TLS only (the cluster bus and replication too) and ask for a
// client certificate: the TLS options reach every node's connection and the subscriber's.
const tlsCluster = usePrivateCluster({ tls: { authClients: true } });
describeEphemeralStoreContract('Redis Cluster over TLS', async () => {
  const { nodes, clientTls } = tlsCluster();
  const tls = { ca: clientTls!.ca, cert: clientTls!.cert, key: clientTls!.key };
  const store = await createRedisEphemeralStore({ cluster: { nodes }, tls, keyPrefix: uniqueRedisPrefix(), connectTimeoutMs: 10_000, commandTimeoutMs: 2000 });
  return { store, cleanup: () => store.close() };
});

// And through Sentinel with TLS on the master, the replica and the sentinels, which all ask for a
// client certificate.
const tlsSentinel = usePrivateSentinel({ tls: { authClients: true } });
describeEphemeralStoreContract('Redis through Sentinel over TLS', async () => {
  const { sentinels, masterName, clientTls } = tlsSentinel();
  const tls = { ca: clientTls!.ca, cert: clientTls!.cert, key: clientTls!.key };
  const store = await createRedisEphemeralStore({ sentinel: { sentinels, masterName, sentinelTls: tls }, tls, keyPrefix: uniqueRedisPrefix(), connectTimeoutMs: 10_000, commandTimeoutMs: 2000 });
  return { store, cleanup: () => store.close() };
});

describe('Redis ephemeral store', () => {
  const keyPrefix = uniqueRedisPrefix();
  const warnings: { obj: object; msg: string }[] = [];
  let store: EphemeralStore;
  let raw: Redis;

  beforeAll(async () => {
    store = await openStore(keyPrefix, { warn: (obj, msg) => warnings.push({ obj, msg }), info: () => undefined });
    raw = new Redis(TEST_REDIS_URL, { lazyConnect: true });
    await raw.connect();
  });
  afterAll(async () => {
    await store.close();
    await raw.quit();
    await dropRedisPrefix(keyPrefix);
  });

  it('writes each key under the prefix, hash tag intact, with its TTL', async () => {
    await store.set('{user:9}:profile', 'v', { ttlMs: 60_000 });
    expect(await raw.get(`${keyPrefix}{user:9}:profile`)).toBe('v');
    expect(await raw.pttl(`${keyPrefix}{user:9}:profile`)).toBeGreaterThan(55_000);
    await store.increment('{ip:1}:logins', 60_000);
    await store.addToSet('{user:9}:sessions', 's1', 60_000);
    // (Besides the store's own data-loss marker, data-loss.ts.)
    const keys = (await raw.keys(`${keyPrefix}*`)).filter((key) => !key.startsWith(keyPrefix + MARKER_KEY_PREFIX)).sort();
    expect(keys).toEqual([`${keyPrefix}{ip:1}:logins`, `${keyPrefix}{user:9}:profile`, `${keyPrefix}{user:9}:sessions`]);
    for (const key of keys) expect(await raw.pttl(key)).toBeGreaterThan(0);
  });

  it('publishes on the prefixed channel, through one subscription per channel', async () => {
    const first = inbox();
    const second = inbox();
    const a = await store.subscribe('invalidate', first.handler);
    const b = await store.subscribe('invalidate', second.handler);
    const [, subscribers] = (await raw.pubsub('NUMSUB', `${keyPrefix}invalidate`)) as [string, number];
    expect(subscribers).toBe(1);
    await raw.publish(`${keyPrefix}invalidate`, 'from outside');
    await Promise.all([first.received('from outside'), second.received('from outside')]);
    await a.close();
    expect(((await raw.pubsub('NUMSUB', `${keyPrefix}invalidate`)) as [string, number])[1]).toBe(1);
    await b.close();
    expect(((await raw.pubsub('NUMSUB', `${keyPrefix}invalidate`)) as [string, number])[1]).toBe(0);
  });

  it('logs a handler that throws instead of letting it escape', async () => {
    await store.subscribe('fragile', () => {
      throw new Error('handler bug');
    });
    await store.publish('fragile', 'boom');
    await waitFor('the warning', () => warnings.some((w) => w.msg === 'a subscriber failed to handle a message'));
  });

  it('explains Redis errors', async () => {
    await store.addToSet('a-set', 'm', 60_000);
    await expect(store.get('a-set')).rejects.toThrow(/Redis GET failed: WRONGTYPE/);
  });

  it('refuses a prefix with braces, which would break hash tags', async () => {
    await expect(openStore('bad{prefix}:')).rejects.toThrow(/must not contain braces/);
  });
});

describe('Redis ephemeral store through Sentinel over TLS', () => {
  const open = (sentinelTls: { ca?: Buffer; cert?: Buffer; key?: Buffer }) => {
    const { sentinels, masterName, clientTls } = tlsSentinel();
    const tls = { ca: clientTls!.ca, cert: clientTls!.cert, key: clientTls!.key };
    return createRedisEphemeralStore({ sentinel: { sentinels, masterName, sentinelTls }, tls, keyPrefix: uniqueRedisPrefix(), connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
  };

  // ioredis only says "Connection is closed" of a sentinel it could not talk to: the store finds out why.
  it('says why the sentinels cannot be reached: a certificate not signed by a trusted CA', async () => {
    const { cert, key } = tlsSentinel().clientTls!;
    await expect(open({ cert, key })).rejects.toThrow(/\(sentinel 127\.0\.0\.1:\d+: the server's TLS certificate could not be verified against the trusted CAs \(/);
  });

  it('says why the sentinels cannot be reached: no client certificate', async () => {
    await expect(open({ ca: tlsSentinel().clientTls!.ca })).rejects.toThrow(/\(sentinel 127\.0\.0\.1:\d+: .*client certificate/);
  });
});
