import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from '@jest/globals';
import { createEventLoopGauge } from '../../../../src/accounts/hashing/event-loop-gauge.ts';

/** Keeps the event loop working, without a pause, for `ms` milliseconds. */
function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy on purpose
  }
}

describe('event-loop gauge', () => {
  it('reads busy after the event loop worked through the window, and not busy after it waited', async () => {
    const gauge = createEventLoopGauge({ threshold: 0.5, windowMs: 50 });
    blockFor(120);
    expect(gauge.isBusy()).toBe(true);
    // Within the window the answer is reused, however the loop spends it.
    expect(gauge.isBusy()).toBe(true);
    // A loop that waits reads not busy: at once on a quiet machine; on a loaded one this worker's
    // loop may go on working for a while, so the wait has a generous bound, not a fixed length.
    const deadline = performance.now() + 10_000;
    let idle = false;
    while (!idle && performance.now() < deadline) {
      await sleep(120);
      idle = !gauge.isBusy();
    }
    expect(idle).toBe(true);
    blockFor(120);
    expect(gauge.isBusy()).toBe(true);
  });

  it('refuses a threshold or window that cannot work', () => {
    expect(() => createEventLoopGauge({ threshold: 0 })).toThrow(RangeError);
    expect(() => createEventLoopGauge({ threshold: 1.2 })).toThrow(RangeError);
    expect(() => createEventLoopGauge({ windowMs: 0 })).toThrow(RangeError);
  });
});
