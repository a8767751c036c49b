import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from '@jest/globals';
import { createTurnBatches, createTurnQueue } from '../../../src/shared/turn-batches.ts';

describe('turn queue', () => {
  it('hands the items of one turn to flush together at its end, and an item added meanwhile to the next turn', async () => {
    const flushed: number[][] = [];
    const add = createTurnQueue<number>((items) => {
      flushed.push(items);
      if (items[0] === 1) add(3);
    });
    add(1);
    add(2);
    expect(flushed).toEqual([]);
    await nextTurn();
    expect(flushed).toEqual([[1, 2]]);
    await nextTurn();
    expect(flushed).toEqual([[1, 2], [3]]);
  });
});

describe('turn batches', () => {
  it('hands the items of one turn to flush once per key, and a later turn gets a batch of its own', async () => {
    const flushed: [string, number[]][] = [];
    const add = createTurnBatches<number>(async (key, items) => {
      flushed.push([key, items]);
    }, 100);
    const first = [add('a', 1), add('b', 2), add('a', 3)];
    expect(first[0]).toBe(first[2]);
    expect(flushed).toEqual([]);
    await Promise.all(first);
    expect(flushed).toEqual([
      ['a', [1, 3]],
      ['b', [2]],
    ]);
    await add('a', 4);
    expect(flushed.at(-1)).toEqual(['a', [4]]);
  });

  it('flushes a batch at once when it reaches maxItems, and starts the next', async () => {
    const flushed: number[][] = [];
    const add = createTurnBatches<number>(async (_key, items) => {
      flushed.push(items);
    }, 3);
    const promises = [1, 2, 3, 4, 5].map((n) => add('k', n));
    expect(flushed).toEqual([[1, 2, 3]]);
    await Promise.all(promises);
    expect(flushed).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
  });

  it("gives every add of a batch the batch's failure, whether flush rejects or throws", async () => {
    const rejecting = createTurnBatches<string>(async () => {
      throw new Error('store down');
    }, 10);
    await expect(Promise.all([rejecting('k', 'x'), rejecting('k', 'y')])).rejects.toThrow('store down');
    const throwing = createTurnBatches<string>(() => {
      throw new Error('synchronous failure');
    }, 10);
    await expect(throwing('k', 'x')).rejects.toThrow('synchronous failure');
    await nextTurn();
  });

  it('refuses a maxItems that cannot work', () => {
    expect(() => createTurnBatches(async () => undefined, 0)).toThrow(RangeError);
    expect(() => createTurnBatches(async () => undefined, 1.5)).toThrow(RangeError);
  });
});
