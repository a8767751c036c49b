import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { createInvalidations, INVALIDATION_CHANNEL, type InvalidationSubscriber } from '../../../src/cache/invalidations.ts';
import { createMemoryEphemeralStore } from '../../../src/store/ephemeral/memory-ephemeral-store.ts';

// Invalidations over the in-process store (the Redis one runs in the two-node integration tests):
// what this node's subscribers hear at once, and what goes over the channel to the other nodes.
async function setup() {
  const store = createMemoryEphemeralStore();
  const messages: string[][] = [];
  await store.subscribe(INVALIDATION_CHANNEL, (message) => messages.push(JSON.parse(message) as string[]));
  const clock = { now: 1_000 };
  const invalidations = createInvalidations(store, pino({ level: 'silent' }), () => clock.now);
  const heard: string[][] = [];
  const local: InvalidationSubscriber = { invalidate: (targets) => heard.push(targets), channelState: () => undefined };
  await invalidations.subscribe(local);
  return { store, invalidations, messages, heard, clock };
}

describe('invalidations', () => {
  it("tells this node's subscribers at once, and the other nodes in one message per turn of the event loop", async () => {
    const t = await setup();
    const first = t.invalidations.publish('oauth:a', 'oauth:a');
    const second = t.invalidations.publish('oauth:b', 'grant:c');
    // Local caches drop the entries before publish returns, each call on its own.
    expect(t.heard).toEqual([['oauth:a'], ['oauth:b', 'grant:c']]);
    expect(t.messages).toEqual([]);
    await Promise.all([first, second]);
    await nextTurn();
    // Each message says first when it was sent.
    expect(t.messages).toEqual([['at:1000', 'oauth:a', 'oauth:b', 'grant:c']]);

    // A later turn makes a message of its own.
    t.clock.now = 2_000;
    await t.invalidations.publish('user:d');
    await nextTurn();
    expect(t.messages).toEqual([['at:1000', 'oauth:a', 'oauth:b', 'grant:c'], ['at:2000', 'user:d']]);
  });

  it('splits more than 1,000 targets into several messages, none lost', async () => {
    const t = await setup();
    const targets = Array.from({ length: 2500 }, (_, i) => `oauth:${i}`);
    await Promise.all([t.invalidations.publish(...targets.slice(0, 1200)), t.invalidations.publish(...targets.slice(1200))]);
    await nextTurn();
    expect(t.messages.map((m) => m.length)).toEqual([1001, 1001, 501]);
    expect(t.messages.flatMap((m) => m.slice(1))).toEqual(targets);
  });

  it('tells how long each message took to arrive; a message without its time (an older node) is delivered all the same', async () => {
    const t = await setup();
    const lags: number[] = [];
    await t.invalidations.observeLag((seconds) => lags.push(seconds));
    const fromOtherNodes: string[][] = [];
    // Subscribers never see the time as a target.
    await t.invalidations.subscribe({ invalidate: (targets) => fromOtherNodes.push(targets), channelState: () => undefined });
    await t.store.publish(INVALIDATION_CHANNEL, JSON.stringify(['at:400', 'pat:1']));
    await t.store.publish(INVALIDATION_CHANNEL, JSON.stringify(['pat:2']));
    await nextTurn();
    expect(fromOtherNodes).toEqual([['pat:1'], ['pat:2']]);
    expect(lags).toEqual([0.6]);
  });

  it('settles without throwing when the store refuses the message', async () => {
    const t = await setup();
    t.store.publish = async () => {
      throw new Error('store unavailable');
    };
    await expect(t.invalidations.publish('oauth:x')).resolves.toBeUndefined();
    expect(t.heard).toEqual([['oauth:x']]);
  });
});
