import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startKeepAliveLoad, type LoadCall } from '../support/keep-alive-load.ts';
import { freePort } from '../support/private-redis.ts';
import { reportFigures } from '../support/resilience-figures.ts';
import { startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera } from '../support/start-tessera.ts';
import { startBalancingProxy, type BalancingProxy } from '../support/tcp-proxy.ts';

const RESOURCE_SERVER_ID = 'records-api';

interface NodeRestart {
  node: string;
  /** Requests sent from the SIGTERM until the balancer found the new process ready. */
  requests: number;
  failed: number;
  /** SIGTERM to exit. */
  drainMs: number;
  /** SIGTERM to the balancer's health check passing on the new process. */
  restartMs: number;
}

// Two Tessera processes (PostgreSQL, Redis) behind a load balancer that health-checks /readyz, and
// clients on keep-alive connections sending introspections, logins and /auth/verify back to back.
// Node A is restarted (SIGTERM, exit, start on the same port, ready), then node B, while the load
// runs: not one request may fail, neither reset nor refused nor answered with an error.
describe('a rolling restart of two nodes behind a load balancer under keep-alive load', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let proxy: BalancingProxy;
  const nodes: { name: string; port: number; process?: ServerProcess }[] = [];
  let env: Record<string, string>;
  let rsSecret: string;

  const start = async (node: (typeof nodes)[number]) => {
    node.process = await startServerProcess({ ...env, PORT: String(node.port) }, { timeoutMs: 90_000 });
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    for (const name of ['A', 'B']) nodes.push({ name, port: await freePort() });
    proxy = await startBalancingProxy(nodes.map(({ port }) => ({ host: '127.0.0.1', port })));
    env = {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      TESSERA_REDIS_PREFIX: prefix,
      ISSUER: `http://127.0.0.1:${proxy.port}`,
      TESSERA_KEY_SECRET: 'rolling-restart-key-encryption-secret-0123456789',
      TESSERA_COOKIE_KEYS: 'rolling-restart-cookie-key-0123456789abcdefghijkl',
      TESSERA_API_REQUESTS_PER_IP_PER_MINUTE: '1000000',
      // Logins are part of the load: never answered 503 busy on this shared machine.
      TESSERA_HASH_BUSY_CORE_PERCENT: '100',
    };
    const setup = await startTestTessera(env);
    try {
      const by = { actor: 'test' };
      await setup.core.accounts.createUser({ username: 'alice', password: 'alice-password', scopes: ['read'] }, by);
      rsSecret = (await setup.core.clients.create({ clientId: RESOURCE_SERVER_ID, name: 'Records API', kind: 'resource_server' }, by)).secret!;
    } finally {
      await setup.stop();
    }
    await Promise.all(nodes.map(start));
    await Promise.all(nodes.map((_, i) => proxy.waitUntilReady(i, true)));
  }, 180_000);

  afterAll(async () => {
    await proxy?.close();
    for (const node of nodes) await node.process?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it('answers every request while node A and then node B restart', async () => {
    const base = new URL(`http://127.0.0.1:${proxy.port}`);
    const signIn = await fetch(new URL('/users/alice/login', base), { method: 'POST', body: new URLSearchParams({ password: 'alice-password' }) });
    expect(signIn.status).toBe(200);
    const session = ((await signIn.json()) as { session: string }).session;

    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const introspect: LoadCall = {
      method: 'POST',
      path: '/oauth/introspect',
      headers: { ...form, authorization: `Basic ${Buffer.from(`${RESOURCE_SERVER_ID}:${rsSecret}`).toString('base64')}` },
      body: new URLSearchParams({ token: session }).toString(),
      expect: (status, body) => status === 200 && (JSON.parse(body) as { active: boolean }).active,
    };
    const login: LoadCall = { method: 'POST', path: '/users/alice/login', headers: form, body: 'password=alice-password', expect: (status) => status === 200 };
    const verify: LoadCall = { method: 'GET', path: '/auth/verify?scope=read', headers: { 'x-session': session }, expect: (status) => status === 200 };

    const load = startKeepAliveLoad(base, [
      { calls: [introspect] },
      { calls: [introspect, verify] },
      { calls: [verify] },
      { calls: [login, introspect, verify] },
      { calls: [introspect, login] },
      // Pauses between requests, so that its connection is idle now and then (well under the 1 s
      // after which a draining node closes a quiet connection).
      { calls: [verify, introspect], pauseMs: 150 },
    ]);
    const waitForRequests = async (count: number) => {
      const target = load.counts().requests + count;
      for (const deadline = Date.now() + 60_000; load.counts().requests < target; ) {
        if (Date.now() > deadline) throw new Error(`fewer than ${count} requests within 60 s`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };

    const restarts: NodeRestart[] = [];
    let loadFigures;
    try {
      await waitForRequests(300);
      for (const [index, node] of nodes.entries()) {
        const before = load.counts();
        const signalledAt = performance.now();
        node.process!.child.kill('SIGTERM');
        const code = await node.process!.exited;
        const drainMs = performance.now() - signalledAt;
        expect(code).toBe(0);
        await start(node);
        await proxy.waitUntilReady(index, true);
        const after = load.counts();
        restarts.push({ node: node.name, requests: after.requests - before.requests, failed: after.failed - before.failed, drainMs: Math.round(drainMs), restartMs: Math.round(performance.now() - signalledAt) });
        // The restarted node serves before the next one goes.
        await waitForRequests(300);
      }
    } finally {
      loadFigures = await load.stop();
    }

    const { failures, ...counts } = loadFigures;
    // (`unrouted` counts connections that found no node ready, such as a node's own issuer check
    // at its start: a load client's would be among its failures.)
    reportFigures(
      `resilience: rolling restart of two nodes: ${counts.requests} requests, ${counts.failed} failed; ` +
        restarts.map((r) => `node ${r.node}: ${r.requests} requests (${r.failed} failed) from SIGTERM to ready, exit after ${r.drainMs} ms, ready after ${r.restartMs} ms`).join('; '),
      { scenario: 'rolling-restart', ...counts, restarts, connectionsTo: proxy.connectionsTo, unrouted: proxy.unrouted },
    );
    expect(failures).toEqual([]);
    expect(counts.failed).toBe(0);
    expect(counts.succeeded).toBe(counts.requests);
    for (const restart of restarts) expect(restart.requests).toBeGreaterThan(0);
    // Every client was told to reconnect (Connection: close) at each drain, not cut.
    expect(counts.answeredWithClose).toBeGreaterThanOrEqual(6);
  }, 300_000);
});
