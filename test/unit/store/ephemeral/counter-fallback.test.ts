import { describe, expect, it } from '@jest/globals';
import { StoreUnavailableError } from '../../../../src/shared/errors.ts';
import type { EphemeralStore } from '../../../../src/store/ephemeral/ephemeral-store.ts';
import { createMemoryEphemeralStore } from '../../../../src/store/ephemeral/memory-ephemeral-store.ts';
import { withCounterFallback } from '../../../../src/store/ephemeral/counter-fallback.ts';

/** A real in-process store whose counters can be made to fail as an unreachable Redis does. */
function switchableStore(clock: () => number) {
  const store = createMemoryEphemeralStore({ clock });
  const state = { failure: null as Error | null };
  const switchable = Object.create(store) as EphemeralStore;
  switchable.increment = (key, windowMs) => (state.failure ? Promise.reject(state.failure) : store.increment(key, windowMs));
  return { store: switchable, state, close: () => store.close() };
}

describe('rate-limit counters with an in-process fallback', () => {
  it('counts in the store while it answers, in process (same window) while it is unreachable, and in the store again after', async () => {
    let now = 1_000_000;
    const clock = () => now;
    const { store, state, close } = switchableStore(clock);
    const counters = withCounterFallback(store, { clock });
    expect(await counters.increment('k', 60_000)).toEqual({ count: 1, ttlMs: 60_000 });

    state.failure = new StoreUnavailableError('Redis', 'Redis at 127.0.0.1:1 is unavailable (ECONNREFUSED); increment was not run');
    expect(await counters.increment('k', 60_000)).toEqual({ count: 1, ttlMs: 60_000 });
    now += 10_000;
    expect(await counters.increment('k', 60_000)).toEqual({ count: 2, ttlMs: 50_000 });
    now += 50_000; // the in-process window ends
    expect(await counters.increment('k', 60_000)).toEqual({ count: 1, ttlMs: 60_000 });

    state.failure = null;
    now += 1;
    expect((await counters.increment('other', 60_000)).count).toBe(1);
    await close();
  });

  it('passes any other failure on: only an unreachable store is replaced', async () => {
    const { store, state, close } = switchableStore(Date.now);
    state.failure = new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
    await expect(withCounterFallback(store).increment('k', 1000)).rejects.toThrow(/WRONGTYPE/);
    await close();
  });

  it('keeps at most maxCounters in process, the expired and then the oldest going first', async () => {
    const now = 0;
    const { store, state, close } = switchableStore(() => now);
    state.failure = new StoreUnavailableError('Redis', 'down');
    const counters = withCounterFallback(store, { clock: () => now, maxCounters: 2 });
    await counters.increment('a', 1000);
    await counters.increment('b', 1000);
    await counters.increment('b', 1000);
    await counters.increment('c', 1000); // 'a' goes
    expect((await counters.increment('b', 1000)).count).toBe(3);
    expect((await counters.increment('a', 1000)).count).toBe(1);
    await close();
  });

  it('leaves every other operation to the store itself', async () => {
    const { store, close } = switchableStore(Date.now);
    const counters = withCounterFallback(store);
    await counters.set('x', 'y', { ttlMs: 1000 });
    expect(await store.get('x')).toBe('y');
    expect(counters.kind).toBe('memory');
    await close();
  });
});
