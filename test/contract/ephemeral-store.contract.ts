import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';

export interface EphemeralStoreFixture {
  store: EphemeralStore;
  /** Moves the store's clock forward; without it, time passes for real (short TTLs, Redis). */
  advance?: (ms: number) => Promise<void>;
  /** Closes the store (it may be closed already) and removes everything it wrote. */
  cleanup: () => Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls until the condition holds; fails naming what was awaited. No fixed sleeps. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Records the messages a subscriber receives. */
export function inbox() {
  const messages: string[] = [];
  return {
    messages,
    handler: (message: string) => {
      messages.push(message);
    },
    received: (message: string) => waitFor(`message ${JSON.stringify(message)}`, () => messages.includes(message)),
  };
}

/**
 * What every ephemeral store must do, whichever implementation is behind it. `create` is called
 * once per test (and again where a test needs a second, independent store).
 */
export function describeEphemeralStoreContract(name: string, create: () => Promise<EphemeralStoreFixture>) {
  describe(`ephemeral store contract: ${name}`, () => {
    let fixture: EphemeralStoreFixture;
    let store: EphemeralStore;
    const others: EphemeralStoreFixture[] = [];

    beforeEach(async () => {
      fixture = await create();
      store = fixture.store;
    });
    afterEach(async () => {
      await fixture.cleanup();
      await Promise.all(others.splice(0).map((other) => other.cleanup()));
    });

    async function another(): Promise<EphemeralStore> {
      const other = await create();
      others.push(other);
      return other.store;
    }

    /** Lets time pass: the injected clock where there is one, a short real wait otherwise. */
    async function elapse(ms: number): Promise<void> {
      if (fixture.advance) await fixture.advance(ms);
      else await sleep(ms);
    }

    describe('strings', () => {
      it('reads back what it wrote, with the TTL it was given', async () => {
        expect(await store.set('greeting', 'hello', { ttlMs: 60_000 })).toBe(true);
        expect(await store.get('greeting')).toBe('hello');
        const ttl = await store.ttl('greeting');
        expect(ttl).toBeGreaterThan(55_000);
        expect(ttl).toBeLessThanOrEqual(60_000);
      });

      it('answers null for a key that does not exist', async () => {
        expect(await store.get('missing')).toBeNull();
        expect(await store.ttl('missing')).toBeNull();
        expect(await store.getDel('missing')).toBeNull();
        expect(await store.expire('missing', 1000)).toBe(false);
      });

      it('overwrites the value and the TTL', async () => {
        await store.set('k', 'first', { ttlMs: 60_000 });
        expect(await store.set('k', 'second', { ttlMs: 5000 })).toBe(true);
        expect(await store.get('k')).toBe('second');
        expect(await store.ttl('k')).toBeLessThanOrEqual(5000);
      });

      it('with onlyIfAbsent, writes only when the key is missing and leaves the existing one as it was', async () => {
        expect(await store.set('once', 'first', { ttlMs: 60_000, onlyIfAbsent: true })).toBe(true);
        expect(await store.set('once', 'second', { ttlMs: 120_000, onlyIfAbsent: true })).toBe(false);
        expect(await store.get('once')).toBe('first');
        expect(await store.ttl('once')).toBeLessThanOrEqual(60_000);
      });

      it('expire sets a new TTL, shorter or longer, on an existing key', async () => {
        await store.set('k', 'v', { ttlMs: 60_000 });
        expect(await store.expire('k', 1000)).toBe(true);
        const shorter = await store.ttl('k');
        expect(shorter).toBeGreaterThan(0);
        expect(shorter).toBeLessThanOrEqual(1000);
        expect(await store.expire('k', 120_000)).toBe(true);
        expect(await store.ttl('k')).toBeGreaterThan(60_000);
        expect(await store.get('k')).toBe('v');
      });

      it('forgets a key when its TTL runs out', async () => {
        await store.set('short', 'v', { ttlMs: 100 });
        await store.set('long', 'v', { ttlMs: 60_000 });
        await store.set('extended', 'v', { ttlMs: 100 });
        await store.expire('extended', 60_000);
        await elapse(150);
        expect(await store.get('short')).toBeNull();
        expect(await store.ttl('short')).toBeNull();
        expect(await store.get('long')).toBe('v');
        expect(await store.get('extended')).toBe('v');
        expect(await store.set('short', 'again', { ttlMs: 60_000, onlyIfAbsent: true })).toBe(true);
        expect(await store.get('short')).toBe('again');
      });

      it('getMany answers in the order asked, null where missing', async () => {
        await store.set('{user:1}:a', 'A', { ttlMs: 60_000 });
        await store.set('{user:1}:c', 'C', { ttlMs: 60_000 });
        expect(await store.getMany(['{user:1}:c', '{user:1}:b', '{user:1}:a'])).toEqual(['C', null, 'A']);
        expect(await store.getMany([])).toEqual([]);
      });

      it('del removes keys and counts those that existed', async () => {
        await store.set('{user:2}:a', '1', { ttlMs: 60_000 });
        await store.set('{user:2}:b', '2', { ttlMs: 60_000 });
        expect(await store.del('{user:2}:a', '{user:2}:b', '{user:2}:missing')).toBe(2);
        expect(await store.getMany(['{user:2}:a', '{user:2}:b'])).toEqual([null, null]);
        expect(await store.del('{user:2}:a')).toBe(0);
        expect(await store.del()).toBe(0);
      });

      it('delDurably and a durable set do what del and set do (waiting for a replica where there is one)', async () => {
        await store.set('{user:3}:a', '1', { ttlMs: 60_000 });
        await store.set('{user:3}:b', '2', { ttlMs: 60_000 });
        expect(await store.delDurably('{user:3}:a', '{user:3}:b', '{user:3}:missing')).toBe(2);
        expect(await store.getMany(['{user:3}:a', '{user:3}:b'])).toEqual([null, null]);
        expect(await store.delDurably()).toBe(0);
        expect(await store.set('{user:3}:revoked', 'yes', { ttlMs: 60_000, durable: true })).toBe(true);
        expect(await store.get('{user:3}:revoked')).toBe('yes');
      });

      it('keeps hash-tagged keys apart from one another and from untagged ones', async () => {
        await store.set('{session:x}:data', 'tagged', { ttlMs: 60_000 });
        await store.set('session:x:data', 'plain', { ttlMs: 60_000 });
        await store.set('{session:y}:data', 'other tag', { ttlMs: 60_000 });
        // (One key each: getMany's keys share a hash tag, or a cluster refuses them.)
        expect(await Promise.all(['{session:x}:data', 'session:x:data', '{session:y}:data'].map((key) => store.get(key)))).toEqual(['tagged', 'plain', 'other tag']);
        expect(await store.getDel('{session:x}:data')).toBe('tagged');
        expect(await store.get('session:x:data')).toBe('plain');
      });

      it('refuses writes without a positive whole-millisecond TTL', async () => {
        for (const ttlMs of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
          await expect(store.set('k', 'v', { ttlMs })).rejects.toThrow(RangeError);
        }
        await expect(store.increment('n', 0)).rejects.toThrow(RangeError);
        await expect(store.addToSet('s', 'm', -5)).rejects.toThrow(RangeError);
        await store.set('k', 'v', { ttlMs: 60_000 });
        await expect(store.expire('k', 0)).rejects.toThrow(RangeError);
        expect(await store.get('k')).toBe('v');
      });
    });

    describe('getDel', () => {
      it('returns the value and removes the key', async () => {
        await store.set('code', 'secret', { ttlMs: 60_000 });
        expect(await store.getDel('code')).toBe('secret');
        expect(await store.getDel('code')).toBeNull();
        expect(await store.get('code')).toBeNull();
      });

      it('of 50 concurrent callers, gives the value to exactly one', async () => {
        for (let round = 0; round < 3; round += 1) {
          await store.set(`single-use:${round}`, `value-${round}`, { ttlMs: 60_000 });
          const results = await Promise.all(Array.from({ length: 50 }, () => store.getDel(`single-use:${round}`)));
          expect(results.filter((r) => r !== null)).toEqual([`value-${round}`]);
        }
      });
    });

    describe('setIfAbsentAlongside', () => {
      it('writes once, only while the companion exists, to live as long as the companion plus the margin', async () => {
        expect(await store.setIfAbsentAlongside('{t}:marker', 'used', '{t}:payload', 1000)).toBe('missing');
        expect(await store.get('{t}:marker')).toBeNull();
        await store.set('{t}:payload', 'p', { ttlMs: 60_000 });
        expect(await store.setIfAbsentAlongside('{t}:marker', 'used', '{t}:payload', 1000)).toBe('written');
        expect(await store.get('{t}:marker')).toBe('used');
        const ttl = (await store.ttl('{t}:marker'))!;
        expect(ttl).toBeGreaterThan(60_000);
        expect(ttl).toBeLessThanOrEqual(61_000);
        expect(await store.setIfAbsentAlongside('{t}:marker', 'again', '{t}:payload', 1000)).toBe('exists');
        expect(await store.get('{t}:marker')).toBe('used');
      });

      it('of 50 concurrent callers, lets exactly one write', async () => {
        await store.set('{race}:payload', 'p', { ttlMs: 60_000 });
        const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => store.setIfAbsentAlongside('{race}:marker', `caller-${i}`, '{race}:payload', 1000)));
        expect(outcomes.filter((o) => o === 'written')).toHaveLength(1);
        expect(outcomes.filter((o) => o === 'exists')).toHaveLength(49);
      });
    });

    describe('setWithCompanion', () => {
      it('writes the value; creates the companion only when given a value, never overwrites it, and re-times it', async () => {
        await store.setWithCompanion('{c}:payload', 'p1', 60_000, { key: '{c}:marker', ttlMs: 61_000 });
        expect(await store.get('{c}:payload')).toBe('p1');
        expect(await store.ttl('{c}:payload')).toBeGreaterThan(59_000);
        expect(await store.get('{c}:marker')).toBeNull();

        await store.setWithCompanion('{c}:payload', 'p2', 60_000, { key: '{c}:marker', ttlMs: 61_000, value: 'first' });
        expect(await store.get('{c}:marker')).toBe('first');
        expect(await store.ttl('{c}:marker')).toBeGreaterThan(60_000);

        await store.setWithCompanion('{c}:payload', 'p3', 120_000, { key: '{c}:marker', ttlMs: 121_000, value: 'second' });
        expect(await store.get('{c}:payload')).toBe('p3');
        expect(await store.get('{c}:marker')).toBe('first');
        expect(await store.ttl('{c}:marker')).toBeGreaterThan(120_000);

        await store.setWithCompanion('{c}:payload', 'p4', 120_000, { key: '{c}:marker', ttlMs: 200_000 });
        expect(await store.get('{c}:marker')).toBe('first');
        expect(await store.ttl('{c}:marker')).toBeGreaterThan(199_000);
      });

      it('refuses a TTL that is not a positive whole number of milliseconds', async () => {
        await expect(store.setWithCompanion('{c}:payload', 'p', 0, { key: '{c}:marker', ttlMs: 1000 })).rejects.toThrow();
        await expect(store.setWithCompanion('{c}:payload', 'p', 1000, { key: '{c}:marker', ttlMs: 1.5 })).rejects.toThrow();
        expect(await store.get('{c}:payload')).toBeNull();
      });
    });

    describe('increment', () => {
      it('counts from 1 in a window that later increments do not move', async () => {
        expect(await store.increment('attempts', 60_000)).toEqual({ count: 1, ttlMs: expect.any(Number) });
        const second = await store.increment('attempts', 1_000_000);
        expect(second.count).toBe(2);
        expect(second.ttlMs).toBeGreaterThan(50_000);
        expect(second.ttlMs).toBeLessThanOrEqual(60_000);
        expect(await store.ttl('attempts')).toBeLessThanOrEqual(60_000);
        expect(await store.get('attempts')).toBe('2');
      });

      it('starts again at 1 when the window has passed', async () => {
        expect((await store.increment('burst', 100)).count).toBe(1);
        expect((await store.increment('burst', 100)).count).toBe(2);
        await elapse(150);
        const fresh = await store.increment('burst', 60_000);
        expect(fresh.count).toBe(1);
        expect(fresh.ttlMs).toBeGreaterThan(55_000);
      });

      it('gives 100 concurrent increments the counts 1..100, once each, and sets the window once', async () => {
        // Each caller asks for a different window: only the one that counted 1 may set it.
        const windowOf = (i: number) => 60_000 + i * 1000;
        const results = await Promise.all(Array.from({ length: 100 }, (_, i) => store.increment('race', windowOf(i)).then((r) => ({ ...r, i }))));
        expect(results.map((r) => r.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
        const first = results.find((r) => r.count === 1)!;
        const window = windowOf(first.i);
        for (const result of results) {
          expect(result.ttlMs).toBeLessThanOrEqual(window);
          expect(result.ttlMs).toBeGreaterThan(window - 5000);
        }
        expect(await store.ttl('race')).toBeLessThanOrEqual(window);
      });
    });

    describe('sets', () => {
      it('adds, lists and removes members; removing the last removes the set', async () => {
        await store.addToSet('{user:3}:sessions', 'a', 60_000);
        await store.addToSet('{user:3}:sessions', 'b', 60_000);
        await store.addToSet('{user:3}:sessions', 'a', 60_000);
        expect((await store.setMembers('{user:3}:sessions')).sort()).toEqual(['a', 'b']);
        await store.removeFromSet('{user:3}:sessions', 'a');
        await store.removeFromSet('{user:3}:sessions', 'not a member');
        expect(await store.setMembers('{user:3}:sessions')).toEqual(['b']);
        await store.removeFromSet('{user:3}:sessions', 'b');
        expect(await store.setMembers('{user:3}:sessions')).toEqual([]);
        expect(await store.ttl('{user:3}:sessions')).toBeNull();
        await store.removeFromSet('{user:3}:sessions', 'b');
        expect(await store.setMembers('missing')).toEqual([]);
      });

      it('never shortens the TTL of a set, but lengthens it', async () => {
        await store.addToSet('members', 'a', 60_000);
        await store.addToSet('members', 'b', 1000);
        expect(await store.ttl('members')).toBeGreaterThan(55_000);
        await store.addToSet('members', 'c', 120_000);
        expect(await store.ttl('members')).toBeGreaterThan(115_000);
        expect((await store.setMembers('members')).sort()).toEqual(['a', 'b', 'c']);
      });

      it('keeps every one of many concurrent additions, to one set and to several, with the longest TTL', async () => {
        const members = Array.from({ length: 2500 }, (_, i) => `member-${i}`);
        await Promise.all([
          ...members.map((member, i) => store.addToSet('{crowd}:index', member, 60_000 + (i === 1234 ? 60_000 : 0))),
          ...members.slice(0, 10).map((member) => store.addToSet('{other}:index', member, 30_000)),
        ]);
        expect((await store.setMembers('{crowd}:index')).sort()).toEqual([...members].sort());
        expect(await store.ttl('{crowd}:index')).toBeGreaterThan(115_000);
        expect((await store.setMembers('{other}:index')).sort()).toEqual(members.slice(0, 10).sort());
        expect(await store.ttl('{other}:index')).toBeLessThanOrEqual(30_000);
      });

      it('forgets a set when its TTL runs out', async () => {
        await store.addToSet('brief', 'a', 100);
        await elapse(150);
        expect(await store.setMembers('brief')).toEqual([]);
        expect(await store.ttl('brief')).toBeNull();
        await store.addToSet('brief', 'b', 60_000);
        expect(await store.setMembers('brief')).toEqual(['b']);
      });
    });

    describe('prefixes', () => {
      it('stores with different prefixes do not see each other', async () => {
        const other = await another();
        await store.set('shared', 'mine', { ttlMs: 60_000 });
        expect(await other.get('shared')).toBeNull();
        expect(await other.set('shared', 'theirs', { ttlMs: 60_000, onlyIfAbsent: true })).toBe(true);
        expect(await store.get('shared')).toBe('mine');
        expect(await other.del('shared')).toBe(1);
        expect(await store.get('shared')).toBe('mine');
        expect((await store.increment('counter', 60_000)).count).toBe(1);
        expect((await other.increment('counter', 60_000)).count).toBe(1);
        await store.addToSet('set', 'mine', 60_000);
        expect(await other.setMembers('set')).toEqual([]);
      });
    });

    describe('publish and subscribe', () => {
      it('delivers a message to every subscriber of the channel, and only to them', async () => {
        const first = inbox();
        const second = inbox();
        const elsewhere = inbox();
        await store.subscribe('news', first.handler);
        await store.subscribe('news', second.handler);
        await store.subscribe('other', elsewhere.handler);
        await store.publish('news', 'm1');
        await Promise.all([first.received('m1'), second.received('m1')]);
        await store.publish('other', 'x');
        await store.publish('news', 'm2');
        await Promise.all([first.received('m2'), second.received('m2'), elsewhere.received('x')]);
        expect(first.messages).toEqual(['m1', 'm2']);
        expect(second.messages).toEqual(['m1', 'm2']);
        expect(elsewhere.messages).toEqual(['x']);
      });

      it('publishing to a channel nobody listens to succeeds', async () => {
        await expect(store.publish('nobody', 'lost')).resolves.toBeUndefined();
      });

      it('stops delivering to a subscription once it is closed', async () => {
        const closed = inbox();
        const open = inbox();
        const closing = await store.subscribe('ch', closed.handler);
        await store.subscribe('ch', open.handler);
        await store.publish('ch', 'before');
        await Promise.all([closed.received('before'), open.received('before')]);
        await closing.close();
        await closing.close(); // closing twice is harmless
        await store.publish('ch', 'after');
        await open.received('after'); // delivered together: had the closed one received it, it would be there now
        expect(closed.messages).toEqual(['before']);
        expect(open.messages).toEqual(['before', 'after']);
      });

      it('can subscribe again to a channel whose last subscription was closed', async () => {
        const first = inbox();
        const subscription = await store.subscribe('again', first.handler);
        await subscription.close();
        const second = inbox();
        await store.subscribe('again', second.handler);
        await store.publish('again', 'hello');
        await second.received('hello');
        expect(first.messages).toEqual([]);
      });

      it('does not deliver across prefixes', async () => {
        const other = await another();
        const mine = inbox();
        const theirs = inbox();
        await store.subscribe('ch', mine.handler);
        await other.subscribe('ch', theirs.handler);
        await store.publish('ch', 'from me');
        await other.publish('ch', 'from them');
        await Promise.all([mine.received('from me'), theirs.received('from them')]);
        // Each published before waiting for its own message: a leak would have arrived by now.
        await store.publish('ch', 'barrier');
        await mine.received('barrier');
        expect(mine.messages).toEqual(['from me', 'barrier']);
        expect(theirs.messages).toEqual(['from them']);
      });

      it('a subscriber that throws does not stop the others', async () => {
        const good = inbox();
        await store.subscribe('fragile', () => {
          throw new Error('handler bug');
        });
        await store.subscribe('fragile', good.handler);
        await store.publish('fragile', 'one');
        await store.publish('fragile', 'two');
        await good.received('two');
        expect(good.messages).toEqual(['one', 'two']);
      });
    });

    describe('ping and close', () => {
      it('ping resolves while the store is open; after close every call rejects', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
        await store.close();
        await store.close(); // closing twice is harmless
        await expect(store.ping()).rejects.toThrow(/closed/);
        await expect(store.get('k')).rejects.toThrow(/closed/);
        await expect(store.set('k', 'v', { ttlMs: 1000 })).rejects.toThrow(/closed/);
        await expect(store.subscribe('ch', () => undefined)).rejects.toThrow(/closed/);
      });

      it('reports its kind', () => {
        expect(['redis', 'memory']).toContain(store.kind);
      });
    });
  });
}
