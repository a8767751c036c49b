/**
 * Work gathered during one turn of the event loop and done together at its end (setImmediate, the
 * check phase), after the turn's reads: what it saves, and where, in
 * docs/architecture.md#end-of-turn-batches.
 */

/** Hands every item added during one turn to `flush`, together, once at the end of that turn. */
export function createTurnQueue<T>(flush: (items: T[]) => void): (item: T) => void {
  let items: T[] = [];
  const flushAll = () => {
    const batch = items;
    items = [];
    flush(batch);
  };
  return (item) => {
    if (items.push(item) === 1) setImmediate(flushAll);
  };
}

/**
 * A turn queue per key, for writes to a store: each key's items of one turn go to `flush` as one
 * batch at the end of the turn, or at once when it reaches `maxItems`. Every add to a batch gets
 * that batch's promise: it settles as `flush` does for the batch.
 */
export function createTurnBatches<T>(flush: (key: string, items: T[]) => Promise<void>, maxItems: number): (key: string, item: T) => Promise<void> {
  if (!Number.isSafeInteger(maxItems) || maxItems < 1) throw new RangeError(`maxItems must be a whole number >= 1, got ${maxItems}`);
  interface Batch {
    key: string;
    items: T[];
    done: Promise<void>;
    settle: { resolve: () => void; reject: (error: unknown) => void };
  }
  const pending = new Map<string, Batch>();

  const send = (batch: Batch) => {
    let flushed: Promise<void>;
    try {
      flushed = flush(batch.key, batch.items);
    } catch (error) {
      flushed = Promise.reject(error);
    }
    flushed.then(batch.settle.resolve, batch.settle.reject);
  };

  // The batches opened this turn; those not already sent at maxItems go now.
  const atEndOfTurn = createTurnQueue<Batch>((opened) => {
    const due = opened.filter((batch) => pending.get(batch.key) === batch);
    for (const batch of due) pending.delete(batch.key);
    for (const batch of due) send(batch);
  });

  return (key, item) => {
    let batch = pending.get(key);
    if (!batch) {
      let settle!: Batch['settle'];
      const done = new Promise<void>((resolve, reject) => {
        settle = { resolve, reject };
      });
      batch = { key, items: [], done, settle };
      pending.set(key, batch);
      atEndOfTurn(batch);
    }
    batch.items.push(item);
    if (batch.items.length >= maxItems) {
      pending.delete(key);
      send(batch);
    }
    return batch.done;
  };
}
