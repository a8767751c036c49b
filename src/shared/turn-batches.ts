/**
 * Collects items added in one turn of the event loop into one batch per key, and hands each batch
 * to `flush` at the end of the turn (setImmediate), or at once when it reaches `maxItems`. Every
 * add to a batch gets that batch's promise: it settles as `flush` does for the batch.
 *
 * For writes that are many per second to few destinations (a token's key into its grant's index,
 * the invalidations of the tokens that ended): one command or message instead of one each.
 */
export function createTurnBatches<T>(flush: (key: string, items: T[]) => Promise<void>, maxItems: number): (key: string, item: T) => Promise<void> {
  if (!Number.isSafeInteger(maxItems) || maxItems < 1) throw new RangeError(`maxItems must be a whole number >= 1, got ${maxItems}`);
  interface Batch {
    items: T[];
    done: Promise<void>;
    settle: { resolve: () => void; reject: (error: unknown) => void };
  }
  let pending = new Map<string, Batch>();
  let scheduled = false;

  const send = (key: string, batch: Batch) => {
    let flushed: Promise<void>;
    try {
      flushed = flush(key, batch.items);
    } catch (error) {
      flushed = Promise.reject(error);
    }
    flushed.then(batch.settle.resolve, batch.settle.reject);
  };

  const flushAll = () => {
    scheduled = false;
    const batches = pending;
    pending = new Map();
    for (const [key, batch] of batches) send(key, batch);
  };

  return (key, item) => {
    let batch = pending.get(key);
    if (!batch) {
      let settle!: Batch['settle'];
      const done = new Promise<void>((resolve, reject) => {
        settle = { resolve, reject };
      });
      batch = { items: [], done, settle };
      pending.set(key, batch);
    }
    batch.items.push(item);
    if (batch.items.length >= maxItems) {
      pending.delete(key);
      send(key, batch);
    } else if (!scheduled) {
      scheduled = true;
      setImmediate(flushAll);
    }
    return batch.done;
  };
}
