import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { StoreUnavailableError } from '../../src/shared/errors.ts';
import { createRedisEphemeralStore } from '../../src/store/redis/redis-ephemeral-store.ts';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { freePort } from '../support/private-redis.ts';
import { usePrivateCluster } from '../support/use-private-cluster.ts';
import { usePrivateSentinel } from '../support/private-sentinel.ts';
import { createTestDatabase, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { createHarvesterAndRecordsApi, postAsClient } from '../support/token-requests.ts';

// Redis replicates asynchronously: a revocation a master acknowledged a moment before it died may
// never reach the replica promoted in its place. Writes that end a credential are therefore
// acknowledged only once a replica confirms them (WAIT); with no replica able to confirm, the
// revocation is answered 503 (retry) rather than 200. Here on a Sentinel set-up of this file's own,
// with its replica frozen (SIGSTOP: still attached, confirming nothing).

const COMMAND_TIMEOUT_MS = 2000;
const sentinel = usePrivateSentinel();

describe('writes that end a credential, on a master with a replica', () => {
  let store: EphemeralStore;
  beforeAll(async () => {
    const { sentinels, masterName } = sentinel();
    store = await createRedisEphemeralStore({ sentinel: { sentinels, masterName }, keyPrefix: uniqueRedisPrefix(), connectTimeoutMs: 2000, commandTimeoutMs: COMMAND_TIMEOUT_MS, heartbeatMs: 100 });
  });
  afterAll(async () => {
    await store?.close();
  });

  it('are acknowledged once the replica has them, and refused while no replica confirms them', async () => {
    await store.set('{t}:a', '1', { ttlMs: 60_000 });
    await store.set('{t}:b', '1', { ttlMs: 60_000 });
    await store.set('{t}:c', '1', { ttlMs: 60_000 });
    // The heartbeat has seen the replica (it probes every 100 ms here).
    await sentinel().waitForReplication();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await store.delDurably('{t}:a')).toBe(1);

    const thaw = await sentinel().freezeReplicas();
    try {
      await expect(store.delDurably('{t}:b')).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.set('{t}:revoked', '1', { ttlMs: 60_000, durable: true })).rejects.toThrow(/no replica of Redis .* confirmed SET/);
      // A plain write does not wait for the replica.
      expect(await store.del('{t}:c')).toBe(1);
    } finally {
      thaw();
    }
    // Refused is not undone: the master ran it, and it repeats harmlessly once the replica is back.
    expect(await store.get('{t}:b')).toBeNull();
    expect(await store.delDurably('{t}:b')).toBe(0);
  }, 30_000);
});

const cluster = usePrivateCluster();

describe('writes that end a credential, on a Redis Cluster whose masters have replicas', () => {
  it('are acknowledged once the replica of the key\'s master has them, and refused while none confirms them', async () => {
    const store = await createRedisEphemeralStore({ cluster: { nodes: cluster().nodes }, keyPrefix: uniqueRedisPrefix(), connectTimeoutMs: 2000, commandTimeoutMs: COMMAND_TIMEOUT_MS });
    try {
      for (const key of ['{a}:x', '{b}:x', '{c}:x']) await store.set(key, '1', { ttlMs: 60_000 });
      expect(await store.delDurably('{a}:x')).toBe(1);
      const masters = await cluster().masters();
      const replicas = cluster().nodes.filter((node) => !masters.some((master) => master.port === node.port));
      for (const replica of replicas) cluster().freezeNode(replica, true);
      try {
        await expect(store.delDurably('{b}:x')).rejects.toThrow(/no replica of Redis .* confirmed DEL/);
        expect(await store.del('{c}:x')).toBe(1);
      } finally {
        for (const replica of replicas) cluster().freezeNode(replica, false);
      }
      expect(await store.delDurably('{b}:x')).toBe(0);
    } finally {
      await store.close();
    }
  }, 30_000);
});

describe('writes that end a credential, on a Redis without replicas', () => {
  it('do not wait: there is no replica a failover could promote', async () => {
    const keyPrefix = uniqueRedisPrefix();
    const store = await createRedisEphemeralStore({ url: TEST_REDIS_URL, keyPrefix, connectTimeoutMs: 2000, commandTimeoutMs: COMMAND_TIMEOUT_MS });
    try {
      await store.set('{t}:a', '1', { ttlMs: 60_000 });
      const started = performance.now();
      expect(await store.delDurably('{t}:a', '{t}:missing')).toBe(1);
      // WAIT would have waited for half the command timeout for a replica that does not exist.
      expect(performance.now() - started).toBeLessThan(COMMAND_TIMEOUT_MS / 2);
    } finally {
      await store.close();
    }
  });
});

describe('revocation through Tessera on Sentinel', () => {
  let db: TestDatabase;
  let tessera: TestTessera;
  let issuer: URL;
  let secrets: Record<string, string> = {};

  const post = (path: string, clientId: string, form: Record<string, string>) => postAsClient(issuer, path, { id: clientId, secret: secrets[clientId]! }, form, 15_000);

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    issuer = new URL(`http://127.0.0.1:${port}`);
    tessera = await startTestTessera({ PORT: String(port), ISSUER: issuer.origin, DATABASE_URL: db.url, ...sentinel().env });
    secrets = await createHarvesterAndRecordsApi(tessera.core);
  }, 60_000);
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
  });

  it('answers 503 + Retry-After, not 200, while no replica can confirm it; the retry succeeds once one can', async () => {
    const issued = await post('/oauth/token', 'harvester', { grant_type: 'client_credentials', scope: 'read' });
    expect(issued.status).toBe(200);
    const token = String(issued.body.access_token);
    // Introspected once, so that the answer is cached: the refused revocation must still drop it.
    expect((await post('/oauth/introspect', 'records-api', { token })).body.active).toBe(true);
    await sentinel().waitForReplication();
    // The heartbeat (every second) has counted the replica.
    await new Promise((resolve) => setTimeout(resolve, 1500));

    const thaw = await sentinel().freezeReplicas();
    let refused;
    try {
      refused = await post('/oauth/revoke', 'harvester', { token });
    } finally {
      thaw();
    }
    expect(refused.status).toBe(503);
    expect(refused.retryAfter).toBe('5');
    expect(refused.body.error).toBe('temporarily_unavailable');
    // The token is already inactive on the master; the retry is what the client was told to do.
    expect((await post('/oauth/introspect', 'records-api', { token })).body.active).toBe(false);
    expect((await post('/oauth/revoke', 'harvester', { token })).status).toBe(200);
  }, 60_000);
});
