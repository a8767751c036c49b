import { describe, expect, it } from '@jest/globals';
import { createMemoryEphemeralStore } from '../../src/store/ephemeral/memory-ephemeral-store.ts';
import { describeEphemeralStoreContract, inbox } from './ephemeral-store.contract.ts';

describeEphemeralStoreContract('in-process', async () => {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const store = createMemoryEphemeralStore({ keyPrefix: 'tessera:', clock: () => now });
  return {
    store,
    advance: async (ms) => {
      now += ms;
    },
    cleanup: () => store.close(),
  };
});

describe('in-process ephemeral store', () => {
  it('takes every TTL decision from the injected clock', async () => {
    let now = 1_000_000;
    const store = createMemoryEphemeralStore({ clock: () => now });
    try {
      await store.set('k', 'v', { ttlMs: 1000 });
      now += 999;
      expect(await store.ttl('k')).toBe(1);
      expect(await store.get('k')).toBe('v');
      now += 1;
      expect(await store.get('k')).toBeNull();
      expect(await store.increment('n', 500)).toEqual({ count: 1, ttlMs: 500 });
      now += 200;
      expect(await store.increment('n', 500)).toEqual({ count: 2, ttlMs: 300 });
    } finally {
      await store.close();
    }
  });

  it('delivers a published message after publish returns, never during it', async () => {
    const store = createMemoryEphemeralStore({});
    try {
      const box = inbox();
      await store.subscribe('ch', box.handler);
      const publishing = store.publish('ch', 'hello');
      expect(box.messages).toEqual([]);
      await publishing;
      await box.received('hello');
    } finally {
      await store.close();
    }
  });
});
