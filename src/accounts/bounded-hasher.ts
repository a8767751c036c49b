import type { PasswordHasher } from './password-hasher.ts';

/**
 * Bounds the password-hashing work a process does at once, so that a guessing storm cannot take
 * every core (argon2 runs on libuv's thread pool) away from introspection and other requests: at
 * most `concurrency` hashes run; up to `maxQueue` wait, each at most `deadlineMs`; beyond that the
 * call fails at once with HashingBusyError (the HTTP layer answers 503 with Retry-After).
 */
export interface HashingLimits {
  concurrency: number;
  maxQueue: number;
  deadlineMs: number;
}

export class HashingBusyError extends Error {
  constructor(message = 'password hashing is saturated') {
    super(message);
    this.name = 'HashingBusyError';
  }
}

export type BoundedPasswordHasher = PasswordHasher;

export interface HashingStats {
  /** Calls holding a slot: running on the underlying hasher. */
  running: number;
  /** Calls waiting for a slot, in arrival order. */
  queued: number;
}

interface Waiter {
  /** Hands the waiter the slot a finishing call gave up. */
  start: () => void;
  timer: ReturnType<typeof setTimeout>;
}

function assertLimits({ concurrency, maxQueue, deadlineMs }: HashingLimits): void {
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a whole number >= 1, got ${concurrency}`);
  if (!Number.isSafeInteger(maxQueue) || maxQueue < 0) throw new RangeError(`maxQueue must be a whole number >= 0, got ${maxQueue}`);
  if (!Number.isSafeInteger(deadlineMs) || deadlineMs < 1) throw new RangeError(`deadlineMs must be a whole number >= 1, got ${deadlineMs}`);
}

/**
 * Wraps a hasher in a semaphore with a FIFO queue. hash, verify and verifyDecoy share the same
 * slots (each is one argon2 computation). A finishing call hands its slot straight to the oldest
 * waiter, so a newcomer never overtakes the queue; a waiter not started within `deadlineMs`
 * leaves the queue and fails with HashingBusyError. A slot is given back however the call ends.
 */
export function createBoundedPasswordHasher(hasher: PasswordHasher, limits: HashingLimits): BoundedPasswordHasher & { stats(): HashingStats } {
  assertLimits(limits);
  const { concurrency, maxQueue, deadlineMs } = limits;
  let running = 0;
  const queue: Waiter[] = [];

  function acquire(): Promise<void> {
    if (running < concurrency) {
      running += 1;
      return Promise.resolve();
    }
    if (queue.length >= maxQueue) {
      return Promise.reject(new HashingBusyError(`password hashing is saturated: ${running} running, ${queue.length} waiting`));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        start: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          const at = queue.indexOf(waiter);
          if (at !== -1) queue.splice(at, 1);
          reject(new HashingBusyError(`password hashing is saturated: no slot within ${deadlineMs} ms`));
        }, deadlineMs),
      };
      queue.push(waiter);
    });
  }

  function release(): void {
    const next = queue.shift();
    // The slot passes to the next waiter as it is: `running` stays the same.
    if (next) next.start();
    else running -= 1;
  }

  async function bounded<T>(work: () => Promise<T>): Promise<T> {
    await acquire();
    try {
      return await work();
    } finally {
      release();
    }
  }

  return {
    hash: (password) => bounded(() => hasher.hash(password)),
    verify: (hash, password) => bounded(() => hasher.verify(hash, password)),
    verifyDecoy: (password) => bounded(() => hasher.verifyDecoy(password)),
    stats: () => ({ running, queued: queue.length }),
  };
}
