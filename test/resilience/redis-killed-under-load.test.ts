import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { reportFigures } from '../support/resilience-figures.ts';
import { startTopology, TOPOLOGIES, type RedisTopology } from '../support/redis-topologies.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';
import { countByStatus, firstSuccess, startSteadyLoad, untilEachSucceeded, type Sample } from '../support/steady-load.ts';
import { REFRESH_PROBE, REVOKED_PROBES, startLoadedTessera, type LoadedTessera } from '../support/tessera-under-load.ts';

// Redis killed (kill -9) under a steady load, on each Redis topology, and brought back: every
// request is answered, with a success or 503 + Retry-After, within ANSWER_WITHIN_MS; no revoked
// credential is ever answered active; personal tokens (PostgreSQL) keep working throughout; and
// everything that needs Redis succeeds again soon after Redis serves again, without a restart.

const ANSWER_WITHIN_MS = 10_000;
/** How long a single Redis stays down before it is restarted (Sentinel: as long as the failover takes). */
const SINGLE_OUTAGE_MS = 3000;
/** Recovery bounds: from the restart (single), from the promotion (Sentinel, cluster). */
const RECOVERY_BOUND_MS: Record<string, number> = { single: 2000, sentinel: 5000, cluster: 5000 };
const PERSONAL_TOKEN_PROBES = ['introspect personal token', 'forward-auth personal token', 'introspect revoked personal token', 'forward-auth revoked personal token'];

/**
 * A refresh whose rotation was in flight at the kill may have consumed its token in Redis without
 * the successor reaching the client (its answer was 503). The reuse grace takes that consume back,
 * so the client's retry refreshes (docs/production.md#outages); were it not, the retry would be
 * reuse and the login would end with invalid_grant. Such chains' invalid_grant answers are counted
 * as lost logins, apart from the wrong answers, and there must be none.
 */
function lostLogins(samples: Sample[], failedAt: number): Set<Sample> {
  const lost = new Set<Sample>();
  const interrupted = new Set(samples.filter((s) => s.probe.startsWith(REFRESH_PROBE) && s.startedAt < failedAt && s.answeredAt >= failedAt && s.outcome === 'unavailable').map((s) => s.probe));
  for (const sample of samples) if (interrupted.has(sample.probe) && sample.status === 400 && sample.detail?.includes('invalid_grant')) lost.add(sample);
  return lost;
}

const describeEach = (samples: Sample[]) => samples.map(({ probe, status, detail, answeredAt, startedAt }) => `${probe}: ${status} after ${answeredAt - startedAt} ms ${detail ?? ''}`);

describe.each(TOPOLOGIES)('Redis killed under load (%s)', (name) => {
  let topology: RedisTopology;
  let db: TestDatabase;
  let loaded: LoadedTessera;
  beforeAll(async () => {
    topology = await startTopology(name);
    db = await createTestDatabase();
    loaded = await startLoadedTessera({ DATABASE_URL: db.url, ...topology.env });
  }, 90_000);
  afterAll(async () => {
    await loaded?.tessera.stop();
    await topology?.stop();
    await db?.drop();
  });

  it('answers every request with a success or 503, never a revoked credential active, and serves again within the bound', async () => {
    const { probes } = loaded;
    // The refresh chains recover as one: any of them succeeding (one may have lost its login).
    const redisProbes = [...new Set(probes.map(({ name: probe }) => (probe.startsWith(REFRESH_PROBE) ? REFRESH_PROBE : probe)).filter((probe) => !PERSONAL_TOKEN_PROBES.includes(probe)))];
    const load = startSteadyLoad(probes, { concurrency: 4, pauseMs: 10, answerWithinMs: ANSWER_WITHIN_MS });
    try {
      await untilEachSucceeded(load, probes.map((probe) => probe.name), 0, 30_000);
      const failedAt = await topology.fail();
      if (name === 'single') {
        // Down for a while, and seen to be down, before the restart.
        const until = failedAt + SINGLE_OUTAGE_MS;
        while (Date.now() < until || !load.samples.some((s) => s.startedAt > failedAt && s.outcome === 'unavailable')) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const restoredAt = await topology.restored();
      // A probe that never recovers is reported below with the rest, not here.
      const recovered = await untilEachSucceeded(load, redisProbes, failedAt, 30_000).then(() => true, () => false);
      // Some more load once everything is back, for answers that come after recovery.
      const settledUntil = Date.now() + 1000;
      while (Date.now() < settledUntil) await new Promise((resolve) => setTimeout(resolve, 50));
      const samples = await load.stop();

      const lost = lostLogins(samples, failedAt);
      const outage = samples.filter((s) => s.answeredAt >= failedAt && s.startedAt <= restoredAt);
      const recoveryByProbe = Object.fromEntries(redisProbes.map((probe) => [probe, (firstSuccess(samples, probe, failedAt) ?? Infinity) - restoredAt]));
      const recoveries = Object.values(recoveryByProbe);
      const figures = {
        scenario: 'redis-killed',
        topology: name,
        requests: samples.length,
        // Single: how long Redis was down; Sentinel and cluster: kill -9 to the promotion.
        [name === 'single' ? 'outageMs' : 'failoverMs']: restoredAt - failedAt,
        duringOutage: countByStatus(outage),
        personalTokensDuringOutage: countByStatus(outage.filter((s) => PERSONAL_TOKEN_PROBES.includes(s.probe))),
        firstSuccessAfterRestoreMs: Math.min(...recoveries),
        everyProbeBackAfterMs: Math.max(...recoveries),
        recoveryByProbe,
        slowestAnswerMs: Math.max(...samples.map((s) => s.answeredAt - s.startedAt)),
        refreshLoginsLost: lost.size,
      };
      reportFigures(
        `resilience: Redis killed (${name}): ${figures.requests} requests; ${name === 'single' ? 'down' : 'failover'} ${restoredAt - failedAt} ms; ` +
          `during it ${JSON.stringify(figures.duringOutage)}; first success ${figures.firstSuccessAfterRestoreMs} ms after ${name === 'single' ? 'the restart' : 'the promotion'}, ` +
          `every probe back after ${figures.everyProbeBackAfterMs} ms; slowest answer ${figures.slowestAnswerMs} ms; refresh logins lost ${lost.size}`,
        figures,
      );

      // Every answer a success or 503 + Retry-After, within the bound: no 500, no hang, and no
      // revoked credential answered active (its probe's success is "inactive").
      expect(describeEach(samples.filter((s) => (s.outcome === 'wrong' || s.outcome === 'no-answer') && !lost.has(s)))).toEqual([]);
      expect(describeEach([...lost])).toEqual([]);
      expect(samples.filter((s) => REVOKED_PROBES.includes(s.probe)).length).toBeGreaterThan(0);
      // Personal tokens live in PostgreSQL: they are answered throughout (docs/production.md#outages).
      expect(describeEach(samples.filter((s) => PERSONAL_TOKEN_PROBES.includes(s.probe) && s.outcome !== 'success'))).toEqual([]);
      expect(outage.some((s) => s.outcome === 'unavailable')).toBe(true);
      expect(recovered).toBe(true);
      expect(Object.entries(recoveryByProbe).filter(([, ms]) => ms > RECOVERY_BOUND_MS[name]!)).toEqual([]);
    } finally {
      await load.stop();
    }
  });
});
