import { describe, expect, it } from '@jest/globals';
import { availableParallelism } from 'node:os';
import { loadConfig } from '../../src/config/load.ts';
import { restartDelay, rollWorkers, workerCount, workersRefusal, type RollSteps } from '../../src/workers.ts';

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

  describe('rolling restart', () => {
    /** Workers as names; what the roll does, as a list of steps, and which are running. */
    function workersAt(names: string[], options: { failingStart?: number; stopAfter?: string; dies?: string } = {}) {
      const running = new Set(names);
      const steps: string[] = [];
      let started = 0;
      let stopping = false;
      const roll: RollSteps<string> = {
        async startReplacement() {
          started++;
          const name = `new${started}`;
          steps.push(`start ${name}`);
          if (started === options.failingStart) return null;
          running.add(name);
          // A worker dying on its own meanwhile (the supervisor restarts it, not the roll).
          if (options.dies) running.delete(options.dies);
          return name;
        },
        async retire(worker) {
          steps.push(`retire ${worker}`);
          running.delete(worker);
          if (worker === options.stopAfter) stopping = true;
        },
        isRunning: (worker) => running.has(worker),
        isStopping: () => stopping,
      };
      return { roll, steps, running };
    }

    it('starts a replacement before it retires each old worker, one at a time', async () => {
      const { roll, steps, running } = workersAt(['a', 'b', 'c']);
      expect(await rollWorkers(['a', 'b', 'c'], roll)).toEqual({ outcome: 'done', replaced: 3 });
      expect(steps).toEqual(['start new1', 'retire a', 'start new2', 'retire b', 'start new3', 'retire c']);
      expect([...running].sort()).toEqual(['new1', 'new2', 'new3']);
    });

    it('stops at a replacement that does not start, leaving the old workers not yet replaced running', async () => {
      const { roll, steps, running } = workersAt(['a', 'b', 'c'], { failingStart: 2 });
      expect(await rollWorkers(['a', 'b', 'c'], roll)).toEqual({ outcome: 'start-failed', replaced: 1, remaining: 2 });
      expect(steps).toEqual(['start new1', 'retire a', 'start new2']);
      expect([...running].sort()).toEqual(['b', 'c', 'new1']);
    });

    it('skips a worker that died meanwhile, and ends when the supervisor stops', async () => {
      const died = workersAt(['a', 'b'], { dies: 'b' });
      expect(await rollWorkers(['a', 'b'], died.roll)).toEqual({ outcome: 'done', replaced: 1 });
      expect(died.steps).toEqual(['start new1', 'retire a']);

      const stopped = workersAt(['a', 'b'], { stopAfter: 'a' });
      expect(await rollWorkers(['a', 'b'], stopped.roll)).toEqual({ outcome: 'stopping', replaced: 1 });
      expect(stopped.steps).toEqual(['start new1', 'retire a']);
    });
  });
});
