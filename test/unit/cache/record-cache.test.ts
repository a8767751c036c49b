import { describe, expect, it } from '@jest/globals';
import { createRecordCache } from '../../../src/cache/record-cache.ts';
import { isPromise } from '../../../src/shared/awaitable.ts';
import { createGate } from '../../support/gate.ts';

// The cache of database records (clients, users) on the hot paths. The store underneath is a table
// the test controls and counts; the real wiring runs in test/integration/introspection-*.test.ts.
function setup() {
  let now = 1_000_000;
  const table = new Map<string, { name: string }>();
  let loads = 0;
  const gate = createGate();
  const cache = createRecordCache<{ name: string }>({
    async load(key) {
      loads += 1;
      const record = table.get(key);
      await gate.passed();
      return record;
    },
    target: (key) => `thing:${key}`,
    ttlMs: 30_000,
    missingTtlMs: 5_000,
    clock: () => now,
  });
  cache.channelState('up');
  return {
    cache,
    table,
    loads: () => loads,
    advance: (ms: number) => (now += ms),
    hold: gate.hold,
  };
}

describe('the record cache', () => {
  it('serves a record from memory until its TTL, each time as a copy of its own', async () => {
    const t = setup();
    t.table.set('a', { name: 'first' });
    const one = await t.cache.get('a');
    one!.name = 'changed by a caller';
    expect(await t.cache.get('a')).toEqual({ name: 'first' });
    expect(t.loads()).toBe(1);
    t.advance(30_001);
    await t.cache.get('a');
    expect(t.loads()).toBe(2);
  });

  it('forgets a record at once when its target is invalidated', async () => {
    const t = setup();
    t.table.set('a', { name: 'old' });
    await t.cache.get('a');
    t.table.set('a', { name: 'new' });
    t.cache.invalidate(['thing:b']);
    expect(await t.cache.get('a')).toEqual({ name: 'old' });
    t.cache.invalidate(['thing:a']);
    expect(await t.cache.get('a')).toEqual({ name: 'new' });
  });

  it('keeps "there is none" only briefly, and forgets it when the record is created and announced', async () => {
    const t = setup();
    expect(await t.cache.get('late')).toBeNull();
    t.table.set('late', { name: 'created' });
    expect(await t.cache.get('late')).toBeNull();
    t.cache.invalidate(['thing:late']);
    expect(await t.cache.get('late')).toEqual({ name: 'created' });
  });

  it('does not keep a load that was running when an invalidation arrived', async () => {
    const t = setup();
    t.table.set('a', { name: 'before' });
    const release = t.hold();
    const racing = t.cache.get('a');
    await Promise.resolve();
    t.table.set('a', { name: 'after' });
    t.cache.invalidate(['thing:a']);
    release();
    expect(await racing).toEqual({ name: 'before' });
    expect(await t.cache.get('a')).toEqual({ name: 'after' });
  });

  it('reads the store every time while the invalidation channel is down', async () => {
    const t = setup();
    t.table.set('a', { name: 'x' });
    await t.cache.get('a');
    t.cache.channelState('down');
    await t.cache.get('a');
    await t.cache.get('a');
    expect(t.loads()).toBe(3);
    t.cache.channelState('up');
    await t.cache.get('a');
    await t.cache.get('a');
    expect(t.loads()).toBe(4);
  });

  it('answers peek at once from memory only, else with a promise: a load before, the record or "none" after, a load once invalidated, expired or while the channel is down', async () => {
    const t = setup();
    t.table.set('a', { name: 'first' });
    const first = t.cache.peek('a');
    expect(isPromise(first)).toBe(true);
    await first;
    expect(t.cache.peek('a')).toEqual({ name: 'first' });
    expect(Object.isFrozen(t.cache.peek('a'))).toBe(true);
    await t.cache.peek('missing');
    expect(t.cache.peek('missing')).toBeNull();
    t.cache.invalidate(['thing:a']);
    const invalidated = t.cache.peek('a');
    expect(isPromise(invalidated)).toBe(true);
    await invalidated;
    t.advance(30_001);
    const expired = t.cache.peek('a');
    expect(isPromise(expired)).toBe(true);
    await expired;
    t.cache.channelState('down');
    const bypassed = t.cache.peek('a');
    expect(isPromise(bypassed)).toBe(true);
    await bypassed;
    expect(t.loads()).toBe(5); // the fifth: the read while the channel is down
  });

  it('never answers a record past its own expiry, nor keeps one that ends sooner than its TTL', async () => {
    let now = 1_000_000;
    let loads = 0;
    const table = new Map<string, { name: string; endsAt: number }>([['a', { name: 'short-lived', endsAt: now + 2_000 }], ['gone', { name: 'expired', endsAt: now }]]);
    const cache = createRecordCache<{ name: string; endsAt: number }>({
      load: async (key) => {
        loads += 1;
        return table.get(key);
      },
      target: (key) => `thing:${key}`,
      ttlMs: 30_000,
      missingTtlMs: 0,
      expiresAt: (record) => record.endsAt,
      clock: () => now,
    });
    cache.channelState('up');
    expect(await cache.get('gone')).toBeNull();
    const gone = cache.peek('gone'); // "none" is not kept at all (missingTtlMs 0): loaded again
    expect(isPromise(gone)).toBe(true);
    expect(await gone).toBeNull();
    expect(await cache.get('a')).toMatchObject({ name: 'short-lived' });
    expect(cache.peek('a')).toMatchObject({ name: 'short-lived' });
    now += 2_000;
    const ended = cache.peek('a');
    expect(isPromise(ended)).toBe(true);
    expect(await ended).toBeNull(); // the store still had it: past its expiry, it is none
    expect(await cache.get('a')).toBeNull();
    expect(loads).toBe(5);
  });
});
