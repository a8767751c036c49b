import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { freePort, killRedisServer, startRedisServer } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { documentedFetch } from '../support/documented-answers.ts';

// The "done when": with Redis stopped /readyz answers 503 with a clear body and nothing
// hangs; with Redis back it answers 200 without a restart.
describe('readiness while Redis goes away and comes back', () => {
  let db: TestDatabase;
  let redis: ChildProcess | undefined;
  let port: number;
  let tessera: TestTessera;
  // Every answer below is held to /openapi.json (test/support/documented-answers.ts).
  const fetch = documentedFetch(() => tessera.url);

  beforeAll(async () => {
    db = await createTestDatabase();
    port = await freePort();
    redis = await startRedisServer(port);
    tessera = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${port}`, TESSERA_REDIS_COMMAND_TIMEOUT_MS: '500' });
  });
  afterAll(async () => {
    await tessera?.stop();
    await killRedisServer(redis);
    await db?.drop();
  });

  async function readyz() {
    const started = performance.now();
    const res = await fetch(`${tessera.url}/readyz`, { signal: AbortSignal.timeout(5000) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, ms: performance.now() - started };
  }

  it('is ready, then 503 naming Redis within the check timeout, then ready again', async () => {
    expect((await readyz()).status).toBe(200);

    await killRedisServer(redis);
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body).toEqual({
      message: 'Not ready: Redis is unreachable.',
      status: 503,
      checks: { database: { status: 'up', kind: 'postgres' }, ephemeral: { status: 'down', kind: 'redis', message: 'Redis is unreachable' } },
    });
    expect(down.ms).toBeLessThan(2000);
    // Liveness does not depend on Redis.
    expect((await fetch(`${tessera.url}/healthz`)).status).toBe(200);

    redis = await startRedisServer(port);
    let last = down;
    const deadline = Date.now() + 10_000;
    while (last.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      last = await readyz();
    }
    expect(last.status).toBe(200);
    expect(last.body).toMatchObject({ status: 'ready' });
  });

  it('answered as /openapi.json says, every time (the answers checked above)', () => {
    expect([...fetch.checked]).toEqual(expect.arrayContaining(['GET /readyz 200', 'GET /readyz 503', 'GET /healthz 200']));
  });
});

// A balancer whose health check reaches a node on a connection it already had (one it keeps
// alive) must hear that the node is going away, not "ready" from its stores.
describe('readiness while draining', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it('answers 503 draining, with Connection: close, once the shutdown has begun', async () => {
    const tessera = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const readyz = () =>
      new Promise<{ status: number; body: Record<string, unknown>; close: boolean; reused: boolean }>((resolve, reject) => {
        const req = request(`${tessera.url}/readyz`, { agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown>, close: res.headers.connection === 'close', reused: req.reusedSocket }));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      expect(await readyz()).toMatchObject({ status: 200, body: { status: 'ready' }, close: false });
      const stopped = tessera.stop();
      expect(await readyz()).toEqual({ status: 503, body: { message: 'Not ready: shutting down.', status: 503, draining: true }, close: true, reused: true });
      await stopped;
    } finally {
      agent.destroy();
      await tessera.stop();
    }
  });
});
