import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { createBoundedPasswordHasher, HashingBusyError, type HashingLimits, type HashingPacing } from '../../../../src/accounts/hashing/bounded-hasher.ts';
import type { PasswordCheck, PasswordHasher } from '../../../../src/accounts/hashing/password-hasher.ts';

/** One call that reached the underlying hasher; the test settles it by hand. */
interface Started {
  label: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * A stand-in for argon2: each call is recorded when it starts and stays pending until the test
 * resolves or rejects it, so the test decides when work ends.
 */
function controllableHasher() {
  const started: Started[] = [];
  const pending = <T>(label: string) =>
    new Promise<T>((resolve, reject) => {
      started.push({ label, resolve: resolve as (value: unknown) => void, reject });
    });
  const hasher: PasswordHasher = {
    hash: (password) => pending<string>(`hash:${password}`),
    verify: (hash, password) => pending<PasswordCheck>(`verify:${hash}:${password}`),
    decoyHash: () => Promise.resolve('$argon2id$decoy'),
  };
  return { hasher, started, labels: () => started.map((s) => s.label) };
}

/** Lets every promise continuation that is ready run (a turn of the event loop). */
const settle = () => nextTurn();

/** Tracks how a promise ended without awaiting it. */
function observe<T>(promise: Promise<T>) {
  const state: { status: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { status: 'pending' };
  promise.then(
    (value) => Object.assign(state, { status: 'resolved', value }),
    (error: unknown) => Object.assign(state, { status: 'rejected', error }),
  );
  return state;
}

const limits = (overrides: Partial<HashingLimits> = {}): HashingLimits => ({ concurrency: 2, maxQueue: 10, deadlineMs: 60_000, ...overrides });

describe('bounded password hasher', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('runs at most `concurrency` calls at once, starting waiters as slots free up', async () => {
    const fake = controllableHasher();
    const bounded = createBoundedPasswordHasher(fake.hasher, limits({ concurrency: 2 }));
    const calls = ['a', 'b', 'c', 'd', 'e'].map((p) => observe(bounded.hash(p)));
    await settle();
    expect(fake.labels()).toEqual(['hash:a', 'hash:b']);
    expect(bounded.stats()).toEqual({ running: 2, queued: 3 });

    fake.started[1]!.resolve('H(b)');
    await settle();
    expect(calls[1]).toEqual({ status: 'resolved', value: 'H(b)' });
    expect(fake.labels()).toEqual(['hash:a', 'hash:b', 'hash:c']);
    expect(bounded.stats()).toEqual({ running: 2, queued: 2 });

    fake.started[0]!.resolve('H(a)');
    fake.started[2]!.resolve('H(c)');
    await settle();
    expect(fake.labels()).toEqual(['hash:a', 'hash:b', 'hash:c', 'hash:d', 'hash:e']);
    expect(bounded.stats()).toEqual({ running: 2, queued: 0 });

    fake.started[3]!.resolve('H(d)');
    fake.started[4]!.resolve('H(e)');
    await settle();
    expect(calls.map((c) => c.value)).toEqual(['H(a)', 'H(b)', 'H(c)', 'H(d)', 'H(e)']);
    expect(bounded.stats()).toEqual({ running: 0, queued: 0 });
  });

  it('starts waiters in arrival order, hash and verify sharing the slots', async () => {
    const fake = controllableHasher();
    const bounded = createBoundedPasswordHasher(fake.hasher, limits({ concurrency: 1 }));
    const first = observe(bounded.verify('$argon2id$x', 'p1'));
    const rest = [observe(bounded.hash('p2')), observe(bounded.verify('$argon2id$decoy', 'p3')), observe(bounded.verify('$argon2id$y', 'p4')), observe(bounded.hash('p5'))];
    await settle();
    expect(fake.labels()).toEqual(['verify:$argon2id$x:p1']);
    for (let i = 0; i < 4; i += 1) {
      fake.started[i]!.resolve(i === 0 ? { ok: true, needsRehash: false } : `r${i}`);
      await settle();
      // A newcomer arriving while others wait goes to the back of the queue.
      if (i === 0) rest.push(observe(bounded.hash('late')));
      expect(fake.started).toHaveLength(i + 2);
    }
    expect(first).toEqual({ status: 'resolved', value: { ok: true, needsRehash: false } });
    expect(fake.labels()).toEqual(['verify:$argon2id$x:p1', 'hash:p2', 'verify:$argon2id$decoy:p3', 'verify:$argon2id$y:p4', 'hash:p5']);
    fake.started[4]!.resolve('r4');
    await settle();
    expect(fake.labels().at(-1)).toBe('hash:late');
    fake.started[5]!.resolve('r5');
    await settle();
    expect(rest.map((r) => r.status)).toEqual(['resolved', 'resolved', 'resolved', 'resolved', 'resolved']);
  });

  it('fails at once with HashingBusyError when the queue is full, without calling the hasher', async () => {
    const fake = controllableHasher();
    const bounded = createBoundedPasswordHasher(fake.hasher, limits({ concurrency: 1, maxQueue: 2 }));
    const running = observe(bounded.hash('a'));
    const waiting = [observe(bounded.hash('b')), observe(bounded.verify('$argon2id$decoy', 'c'))];
    const refused = bounded.verify('h', 'd');
    await expect(refused).rejects.toThrow(HashingBusyError);
    await expect(bounded.hash('e')).rejects.toBeInstanceOf(HashingBusyError);
    expect(fake.labels()).toEqual(['hash:a']);
    expect(bounded.stats()).toEqual({ running: 1, queued: 2 });

    // The refused calls took no place: the queued ones still run, in order, and nothing else.
    fake.started[0]!.resolve('A');
    await settle();
    fake.started[1]!.resolve('B');
    await settle();
    fake.started[2]!.resolve(undefined);
    await settle();
    expect(fake.labels()).toEqual(['hash:a', 'hash:b', 'verify:$argon2id$decoy:c']);
    expect([running.status, ...waiting.map((w) => w.status)]).toEqual(['resolved', 'resolved', 'resolved']);
  });

  it('with maxQueue 0, refuses every call beyond the running ones', async () => {
    const fake = controllableHasher();
    const bounded = createBoundedPasswordHasher(fake.hasher, limits({ concurrency: 1, maxQueue: 0 }));
    const running = bounded.hash('a');
    await expect(bounded.hash('b')).rejects.toThrow(HashingBusyError);
    await settle();
    fake.started[0]!.resolve('A');
    await expect(running).resolves.toBe('A');
    const next = bounded.hash('c');
    await settle();
    fake.started[1]!.resolve('C');
    await expect(next).resolves.toBe('C');
  });

  it('removes a waiter not started within the deadline and rejects it with HashingBusyError', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
    const fake = controllableHasher();
    const bounded = createBoundedPasswordHasher(fake.hasher, limits({ concurrency: 1, deadlineMs: 50 }));
    observe(bounded.hash('a'));
    const early = observe(bounded.hash('b'));
    jest.advanceTimersByTime(20);
    const later = observe(bounded.hash('c'));
    await settle();
    expect(bounded.stats()).toEqual({ running: 1, queued: 2 });

    jest.advanceTimersByTime(29); // 49 ms after b queued
    await settle();
    expect(early.status).toBe('pending');
    jest.advanceTimersByTime(1); // 50 ms
    await settle();
    expect(early.status).toBe('rejected');
    expect(early.error).toBeInstanceOf(HashingBusyError);
    expect(later.status).toBe('pending');
    expect(bounded.stats()).toEqual({ running: 1, queued: 1 });

    // The slot goes to c, the waiter still in time; b never reaches the hasher.
    fake.started[0]!.resolve('A');
    await settle();
    expect(fake.labels()).toEqual(['hash:a', 'hash:c']);
    // Once started, c's deadline no longer applies (its timer is gone), however long the hash takes.
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(1000);
    await settle();
    expect(later.status).toBe('pending');
    fake.started[1]!.resolve('C');
    await settle();
    expect(later).toEqual({ status: 'resolved', value: 'C' });
    expect(bounded.stats()).toEqual({ running: 0, queued: 0 });
  });

  it('gives the slot back when the underlying hasher rejects or throws', async () => {
    const fake = controllableHasher();
    const bounded = createBoundedPasswordHasher(fake.hasher, limits({ concurrency: 1 }));
    const failing = bounded.hash('a');
    const waiting = bounded.hash('b');
    await settle();
    fake.started[0]!.reject(new Error('argon2 exploded'));
    await expect(failing).rejects.toThrow('argon2 exploded');
    await settle();
    expect(fake.labels()).toEqual(['hash:a', 'hash:b']);
    fake.started[1]!.resolve('B');
    await expect(waiting).resolves.toBe('B');
    expect(bounded.stats()).toEqual({ running: 0, queued: 0 });

    // A hasher that throws instead of returning a rejected promise frees its slot as well.
    const throwing = createBoundedPasswordHasher(
      {
        ...fake.hasher,
        hash: () => {
          throw new Error('synchronous failure');
        },
      },
      limits({ concurrency: 1, maxQueue: 0 }),
    );
    await expect(throwing.hash('x')).rejects.toThrow('synchronous failure');
    expect(throwing.stats()).toEqual({ running: 0, queued: 0 });
    const afterwards = throwing.verify('h', 'y');
    await settle();
    expect(fake.labels().at(-1)).toBe('verify:h:y');
    fake.started.at(-1)!.resolve({ ok: false, needsRehash: false });
    await expect(afterwards).resolves.toEqual({ ok: false, needsRehash: false });
  });

  describe('paced while the process is busy', () => {
    /** Fake timers and a gauge the test switches; `now` follows the fake clock. */
    function pacedSetup(busyShare: number, overrides: Partial<HashingLimits> = {}) {
      jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] });
      const fake = controllableHasher();
      const load = { busy: true };
      const pacing: HashingPacing = { busyShare, gauge: { isBusy: () => load.busy }, now: () => Date.now() };
      const bounded = createBoundedPasswordHasher(fake.hasher, limits({ concurrency: 1, ...overrides }), pacing);
      /** Advances the fake clock and lets what became ready run. */
      const advance = async (ms: number) => {
        jest.advanceTimersByTime(ms);
        await settle();
      };
      return { fake, load, bounded, advance };
    }

    it('while busy, starts a hash no sooner than (mean hash time ÷ share) after the previous start', async () => {
      const { fake, bounded, advance } = pacedSetup(0.25);
      const calls = ['a', 'b', 'c'].map((p) => observe(bounded.hash(p)));
      await settle();
      expect(fake.labels()).toEqual(['hash:a']);
      // a takes 100 ms: with a quarter of a core, the next may start 400 ms after a started.
      await advance(100);
      fake.started[0]!.resolve('A');
      await settle();
      expect(calls[0]!.status).toBe('resolved');
      expect(fake.labels()).toEqual(['hash:a']);
      expect(bounded.stats()).toEqual({ running: 0, queued: 2 });
      await advance(299);
      expect(fake.labels()).toEqual(['hash:a']);
      await advance(1);
      expect(fake.labels()).toEqual(['hash:a', 'hash:b']);
      // b is quick (20 ms): the mean falls to 84 ms, so c may start 336 ms after b started.
      await advance(20);
      fake.started[1]!.resolve('B');
      await settle();
      await advance(315);
      expect(fake.labels()).toEqual(['hash:a', 'hash:b']);
      await advance(1);
      expect(fake.labels()).toEqual(['hash:a', 'hash:b', 'hash:c']);
      fake.started[2]!.resolve('C');
      await settle();
      expect(calls.map((c) => c.value)).toEqual(['A', 'B', 'C']);
      expect(jest.getTimerCount()).toBe(0);
    });

    it('starts at once when the process is not busy, and paces again when it is', async () => {
      const { fake, load, bounded, advance } = pacedSetup(0.5);
      load.busy = false;
      observe(bounded.hash('a'));
      await advance(100);
      fake.started[0]!.resolve('A');
      await settle();
      observe(bounded.hash('b'));
      await settle();
      // Not busy: b starts as soon as a's slot is free, not 200 ms after a started.
      expect(fake.labels()).toEqual(['hash:a', 'hash:b']);
      await advance(100);
      fake.started[1]!.resolve('B');
      await settle();
      load.busy = true;
      observe(bounded.hash('c'));
      await settle();
      expect(fake.labels()).toEqual(['hash:a', 'hash:b']);
      await advance(100); // 200 ms after b started
      expect(fake.labels()).toEqual(['hash:a', 'hash:b', 'hash:c']);
    });

    it('holds a waiter back by the pace for at most half its deadline, so slow hashes alone never make a sign-in fail', async () => {
      // a takes 100 ms and the share is a tenth: the pace alone would hold b until 1,000 ms, past
      // its 500 ms deadline. The gap is capped at 250 ms instead.
      const { fake, bounded, advance } = pacedSetup(0.1, { deadlineMs: 500 });
      observe(bounded.hash('a'));
      const held = observe(bounded.hash('b'));
      await advance(100);
      fake.started[0]!.resolve('A');
      await advance(149);
      expect(fake.labels()).toEqual(['hash:a']);
      await advance(1);
      expect(fake.labels()).toEqual(['hash:a', 'hash:b']);
      fake.started[1]!.resolve('B');
      await settle();
      expect(held).toMatchObject({ status: 'resolved', value: 'B' });
      expect(jest.getTimerCount()).toBe(0);
    });

    it('a waiter that gets no slot before its deadline still fails with HashingBusyError while paced', async () => {
      const { fake, bounded, advance } = pacedSetup(0.1, { deadlineMs: 500 });
      observe(bounded.hash('a'));
      const second = observe(bounded.hash('b'));
      const third = observe(bounded.hash('c'));
      await advance(100);
      fake.started[0]!.resolve('A');
      await advance(150); // b starts at the capped gap and keeps the one slot
      expect(fake.labels()).toEqual(['hash:a', 'hash:b']);
      await advance(249);
      expect(third.status).toBe('pending');
      await advance(1); // c's deadline, with b still running
      expect(third.status).toBe('rejected');
      expect(third.error).toBeInstanceOf(HashingBusyError);
      fake.started[1]!.resolve('B');
      await advance(1000);
      expect(second.status).toBe('resolved');
      expect(fake.labels()).toEqual(['hash:a', 'hash:b']);
      expect(bounded.stats()).toEqual({ running: 0, queued: 0 });
    });

    it('with a share of 1, never waits for a pace', async () => {
      const { fake, bounded } = pacedSetup(1);
      observe(bounded.hash('a'));
      observe(bounded.hash('b'));
      await settle();
      fake.started[0]!.resolve('A');
      await settle();
      expect(fake.labels()).toEqual(['hash:a', 'hash:b']);
    });
  });

  it('refuses limits that cannot work', () => {
    const { hasher } = controllableHasher();
    expect(() => createBoundedPasswordHasher(hasher, limits({ concurrency: 0 }))).toThrow(RangeError);
    expect(() => createBoundedPasswordHasher(hasher, limits({ maxQueue: -1 }))).toThrow(RangeError);
    expect(() => createBoundedPasswordHasher(hasher, limits({ deadlineMs: 0 }))).toThrow(RangeError);
    expect(() => createBoundedPasswordHasher(hasher, limits({ concurrency: 1.5 }))).toThrow(RangeError);
    const gauge = { isBusy: () => true };
    expect(() => createBoundedPasswordHasher(hasher, limits(), { busyShare: 0, gauge })).toThrow(RangeError);
    expect(() => createBoundedPasswordHasher(hasher, limits(), { busyShare: 1.5, gauge })).toThrow(RangeError);
  });
});
