import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { freePort, killRedisServer, startRedisServer } from '../support/private-redis.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

// The "done when": with Redis stopped /readyz answers 503 with a clear body and nothing
// hangs; with Redis back it answers 200 without a restart.
describe('readiness while Redis goes away and comes back', () => {
  let db: TestDatabase;
  let redis: ChildProcess | undefined;
  let port: number;
  let tessera: TestTessera;

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
});
