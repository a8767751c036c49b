import { storeUnavailableCause } from '../../shared/errors.ts';
import type { CounterResult, EphemeralStore } from './ephemeral-store.ts';

export interface CounterFallbackOptions {
  /** Milliseconds since the epoch (tests move it). */
  clock?: () => number;
  /** Most counters kept in process; past it, expired ones go, then the oldest. Default 100,000. */
  maxCounters?: number;
}

/**
 * The store as a rate limiter uses it: its own counters while it answers, and counters in this
 * process (same keys, windows and so limits) while it is unreachable, so that a limit does not
 * make an outage of Redis an outage of what needs only PostgreSQL. During an outage each node
 * counts only the requests it sees; the in-process windows start with the outage.
 */
export function withCounterFallback(store: EphemeralStore, options: CounterFallbackOptions = {}): EphemeralStore {
  const clock = options.clock ?? Date.now;
  const maxCounters = options.maxCounters ?? 100_000;
  const counters = new Map<string, { count: number; endsAt: number }>();

  function makeRoom(now: number): void {
    for (const [key, counter] of counters) if (counter.endsAt <= now) counters.delete(key);
    while (counters.size >= maxCounters) counters.delete(counters.keys().next().value!);
  }

  function incrementInProcess(key: string, windowMs: number): CounterResult {
    const now = clock();
    let counter = counters.get(key);
    if (!counter || counter.endsAt <= now) {
      counters.delete(key);
      if (counters.size >= maxCounters) makeRoom(now);
      counter = { count: 0, endsAt: now + windowMs };
      counters.set(key, counter);
    }
    counter.count += 1;
    return { count: counter.count, ttlMs: counter.endsAt - now };
  }

  const fallback = Object.create(store) as EphemeralStore;
  fallback.increment = async (key, windowMs) => {
    try {
      return await store.increment(key, windowMs);
    } catch (error) {
      if (!storeUnavailableCause(error)) throw error;
      return incrementInProcess(key, windowMs);
    }
  };
  return fallback;
}
