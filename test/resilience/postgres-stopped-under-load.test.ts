import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.ts';
import { reportFigures } from '../support/resilience-figures.ts';
import { startTopology, TOPOLOGIES, type RedisTopology } from '../support/redis-topologies.ts';
import { countByStatus, firstSuccess, startSteadyLoad, untilEachSucceeded, type Sample } from '../support/steady-load.ts';
import { REFRESH_PROBE, startLoadedTessera, type LoadedTessera } from '../support/tessera-under-load.ts';

// PostgreSQL stopped (pg_ctl stop -m immediate) under a steady load, with Redis on each topology,
// and started again: every request is answered, with a success or 503 + Retry-After, within
// ANSWER_WITHIN_MS; /readyz answers 503; personal tokens are answered from the introspection
// cache only as long as it keeps an answer (introspection.cacheTtlSeconds, counted from the last
// lookup before the stop), and 503 after; no revoked credential is ever answered active; and every
// endpoint succeeds again once PostgreSQL is back, without a restart.

const ANSWER_WITHIN_MS = 10_000;
/** Short, so that the outage outlives the cached answers and both sides of the bound are seen. */
const CACHE_TTL_S = 2;
/** How long PostgreSQL stays down. */
const OUTAGE_MS = CACHE_TTL_S * 1000 + 3000;
/** Slack for the order of events between the load and the stop (a lookup answered as the server went). */
const ORDER_SLACK_MS = 250;
/** Every endpoint must succeed again within this of PostgreSQL accepting connections. */
const RECOVERY_BOUND_MS = 5000;
const PERSONAL_TOKEN_SUCCESSES = ['introspect personal token', 'forward-auth personal token'];

const describeEach = (samples: Sample[]) => samples.map(({ probe, status, detail, answeredAt, startedAt }) => `${probe}: ${status} after ${answeredAt - startedAt} ms ${detail ?? ''}`);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(TOPOLOGIES)('PostgreSQL stopped under load (Redis: %s)', (name) => {
  let topology: RedisTopology;
  let postgres: PrivatePostgres;
  let loaded: LoadedTessera;
  beforeAll(async () => {
    [topology, postgres] = await Promise.all([startTopology(name), startPrivatePostgres()]);
    loaded = await startLoadedTessera({ DATABASE_URL: postgres.url, TESSERA_INTROSPECTION_CACHE_TTL: String(CACHE_TTL_S), ...topology.env }, { introspection: { inactiveCacheTtlSeconds: 1 } });
  }, 90_000);
  afterAll(async () => {
    await loaded?.tessera.stop();
    await Promise.all([topology?.stop(), postgres?.destroy()]);
  });

  it('answers every request with a success or 503, serves personal tokens from the cache within its bound, and serves again once PostgreSQL is back', async () => {
    const { probes } = loaded;
    const groups = [...new Set(probes.map(({ name: probe }) => (probe.startsWith(REFRESH_PROBE) ? REFRESH_PROBE : probe)))];
    const load = startSteadyLoad(probes, { concurrency: 4, pauseMs: 10, answerWithinMs: ANSWER_WITHIN_MS });
    try {
      await untilEachSucceeded(load, groups, 0, 30_000);
      const stoppedAt = await postgres.stop();
      while (Date.now() < stoppedAt + OUTAGE_MS) await pause(50);
      const restartedAt = await postgres.start();
      const recovered = await untilEachSucceeded(load, groups, restartedAt, 30_000).then(() => true, () => false);
      const settledUntil = Date.now() + 1000;
      while (Date.now() < settledUntil) await pause(50);
      const samples = await load.stop();

      // Sent while PostgreSQL was down (and answered before it was back).
      const outage = samples.filter((s) => s.startedAt >= stoppedAt && s.answeredAt <= restartedAt);
      // (Until ORDER_SLACK_MS before pg_ctl said PostgreSQL had started: it accepts connections a poll of pg_ctl earlier.)
      const personalTokenServed = outage.filter((s) => PERSONAL_TOKEN_SUCCESSES.includes(s.probe) && s.outcome === 'success' && s.answeredAt <= restartedAt - ORDER_SLACK_MS);
      const recoveryByProbe = Object.fromEntries(groups.map((probe) => [probe, (firstSuccess(samples, probe, restartedAt) ?? Infinity) - restartedAt]));
      const recoveries = Object.values(recoveryByProbe);
      const byProbe = Object.fromEntries(groups.map((probe) => [probe, countByStatus(outage.filter((s) => s.probe.startsWith(probe)))]));
      const figures = {
        scenario: 'postgres-stopped',
        topology: name,
        requests: samples.length,
        outageMs: restartedAt - stoppedAt,
        duringOutage: countByStatus(outage),
        duringOutageByProbe: byProbe,
        cacheTtlMs: CACHE_TTL_S * 1000,
        personalTokensFromCacheUntilMs: Math.max(0, ...personalTokenServed.map((s) => s.answeredAt - stoppedAt)),
        firstSuccessAfterRestartMs: Math.min(...recoveries),
        everyProbeBackAfterMs: Math.max(...recoveries),
        recoveryByProbe,
        slowestAnswerMs: Math.max(...samples.map((s) => s.answeredAt - s.startedAt)),
      };
      reportFigures(
        `resilience: PostgreSQL stopped (Redis ${name}): ${figures.requests} requests; down ${figures.outageMs} ms; during it ${JSON.stringify(figures.duringOutage)}; ` +
          `personal tokens from the cache until ${figures.personalTokensFromCacheUntilMs} ms (TTL ${figures.cacheTtlMs} ms); first success ${figures.firstSuccessAfterRestartMs} ms after the restart, ` +
          `every probe back after ${figures.everyProbeBackAfterMs} ms; slowest answer ${figures.slowestAnswerMs} ms`,
        figures,
      );

      expect(describeEach(samples.filter((s) => s.outcome === 'wrong' || s.outcome === 'no-answer'))).toEqual([]);
      // /readyz names PostgreSQL down for the whole outage (until ORDER_SLACK_MS before pg_ctl said it
      // had started: the server accepts connections a poll of pg_ctl before that).
      const readyz = outage.filter((s) => s.probe === 'readyz' && s.answeredAt <= restartedAt - ORDER_SLACK_MS);
      expect(readyz.length).toBeGreaterThan(0);
      expect(countByStatus(readyz)).toEqual({ 503: readyz.length });
      // Personal tokens: answered from the cache, and only while it may keep an answer.
      expect(personalTokenServed.length).toBeGreaterThan(0);
      expect(describeEach(personalTokenServed.filter((s) => s.answeredAt > stoppedAt + CACHE_TTL_S * 1000 + ORDER_SLACK_MS))).toEqual([]);
      expect(outage.some((s) => PERSONAL_TOKEN_SUCCESSES.includes(s.probe) && s.outcome === 'unavailable')).toBe(true);
      expect(recovered).toBe(true);
      expect(Object.entries(recoveryByProbe).filter(([, ms]) => ms > RECOVERY_BOUND_MS)).toEqual([]);
    } finally {
      await load.stop();
    }
  });
});
