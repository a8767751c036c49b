import { describe, expect, it } from '@jest/globals';
import { availableParallelism } from 'node:os';
import { loadConfig } from '../../src/config/load.ts';
import { restartDelay, workerCount, workersRefusal } from '../../src/workers.ts';

describe('the workers supervisor', () => {
  const postgresAndRedis = { DATABASE_URL: 'postgres://db/tessera', REDIS_URL: 'redis://redis:6379' };

  it('runs one worker per core with auto', () => {
    expect(workerCount(loadConfig({ env: { TESSERA_WORKERS: 'auto' } }))).toBe(availableParallelism());
    expect(workerCount(loadConfig({ env: { TESSERA_WORKERS: '3' } }))).toBe(3);
  });

  it('refuses several workers on the embedded database or without Redis, and allows one anywhere', () => {
    expect(workersRefusal(loadConfig({ env: { TESSERA_WORKERS: '2', ...postgresAndRedis } }), 2)).toBeNull();
    expect(workersRefusal(loadConfig({ env: {} }), 1)).toBeNull();
    expect(workersRefusal(loadConfig({ env: { TESSERA_WORKERS: '2', REDIS_URL: postgresAndRedis.REDIS_URL } }), 2)).toMatch(/needs PostgreSQL \(DATABASE_URL\)/);
    expect(workersRefusal(loadConfig({ env: { TESSERA_WORKERS: '2', DATABASE_URL: postgresAndRedis.DATABASE_URL } }), 2)).toMatch(/needs Redis \(REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES\)/);
    // Sentinel and a cluster are Redis too.
    const postgres = { TESSERA_WORKERS: '2', DATABASE_URL: postgresAndRedis.DATABASE_URL };
    expect(workersRefusal(loadConfig({ env: { ...postgres, REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_MASTER: 'm' } }), 2)).toBeNull();
    expect(workersRefusal(loadConfig({ env: { ...postgres, REDIS_CLUSTER_NODES: 'r1:6379,r2:6379' } }), 2)).toBeNull();
  });

  it('restarts at once after a worker that lived, and backs off, doubling up to a ceiling, while they die young', () => {
    const backoff = { stableMs: 10_000, initialMs: 500, maxMs: 30_000 };
    expect([0, 1, 2, 3, 4, 6, 7, 20].map((deaths) => restartDelay(deaths, backoff))).toEqual([0, 500, 1000, 2000, 4000, 16_000, 30_000, 30_000]);
  });
});
