// Bounds the password-hashing work a process does at once, so that a guessing storm cannot take
// every core from the other requests, and paces it while the process is busy
// (docs/design/password-hashing.md).
import type { LoadGauge } from './event-loop-gauge.ts';
import type { PasswordHasher } from './password-hasher.ts';

/** At most `concurrency` hashes run; up to `maxQueue` wait, each at most `deadlineMs`; then HashingBusyError. */
export interface HashingLimits {
  concurrency: number;
  maxQueue: number;
  deadlineMs: number;
}

/**
 * While the gauge says busy, a hash starts no sooner than (mean hash time ÷ busyShare) after the
 * previous one, capped at half of deadlineMs: kernel priorities alone do not hold hashing back
 * (see the architecture note).
 */
export interface HashingPacing {
  /** The share of one core (0 < share ≤ 1) hashing may take while the gauge says busy; 1: no pacing. */
  busyShare: number;
  gauge: LoadGauge;
  /** A monotonic clock in milliseconds (tests give their own). */
  now?: () => number;
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
  /** Hands the waiter a slot. */
  start: () => void;
  timer: ReturnType<typeof setTimeout>;
}

function assertLimits({ concurrency, maxQueue, deadlineMs }: HashingLimits): void {
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a whole number >= 1, got ${concurrency}`);
  if (!Number.isSafeInteger(maxQueue) || maxQueue < 0) throw new RangeError(`maxQueue must be a whole number >= 0, got ${maxQueue}`);
  if (!Number.isSafeInteger(deadlineMs) || deadlineMs < 1) throw new RangeError(`deadlineMs must be a whole number >= 1, got ${deadlineMs}`);
}

function assertPacing(pacing: HashingPacing | undefined): void {
  if (pacing && !(pacing.busyShare > 0 && pacing.busyShare <= 1)) throw new RangeError(`busyShare must be in (0, 1], got ${pacing.busyShare}`);
}

/** Weight of the newest hash in the running mean of hash times. */
const MEAN_WEIGHT = 0.2;

/**
 * Wraps a hasher in a semaphore with a FIFO queue, shared by hash and verify. A waiter
 * not started within `deadlineMs` fails with HashingBusyError; a slot is given back however the
 * call ends.
 */
export function createBoundedPasswordHasher(hasher: PasswordHasher, limits: HashingLimits, pacing?: HashingPacing): BoundedPasswordHasher & { stats(): HashingStats } {
  assertLimits(limits);
  assertPacing(pacing);
  const { concurrency, maxQueue, deadlineMs } = limits;
  const paced = pacing && pacing.busyShare < 1 ? pacing : undefined;
  const now = pacing?.now ?? (() => performance.now());
  let running = 0;
  const queue: Waiter[] = [];
  /** Running mean of how long one hash takes, in ms (0 until one has finished). */
  let meanHashMs = 0;
  /** When the latest hash started (the pace counts from there). */
  let lastStartAt = 0;
  let paceTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * How long the next start must wait for the pace, in ms (0: it may start now). The gap is at
   * most half the deadline: when hashes are slow (a loaded machine), the pace alone must not make
   * the one sign-in at the head of the queue fail as busy.
   */
  function paceWait(): number {
    if (!paced) return 0;
    const gap = Math.min(meanHashMs / paced.busyShare, deadlineMs / 2);
    const wait = lastStartAt + gap - now();
    return wait > 0 && paced.gauge.isBusy() ? wait : 0;
  }

  function take(): void {
    running += 1;
    lastStartAt = now();
  }

  /** Starts waiters while slots are free and the pace allows; otherwise comes back when it will. */
  function pump(): void {
    while (queue.length > 0 && running < concurrency) {
      const wait = paceWait();
      if (wait > 0) {
        if (!paceTimer) {
          paceTimer = setTimeout(() => {
            paceTimer = undefined;
            pump();
          }, Math.ceil(wait));
          paceTimer.unref?.();
        }
        return;
      }
      take();
      queue.shift()!.start();
    }
  }

  function acquire(): Promise<void> {
    if (queue.length === 0 && running < concurrency && paceWait() === 0) {
      take();
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
      pump();
    });
  }

  function release(startedAt: number): void {
    const took = now() - startedAt;
    meanHashMs = meanHashMs === 0 ? took : meanHashMs + MEAN_WEIGHT * (took - meanHashMs);
    running -= 1;
    pump();
  }

  async function bounded<T>(work: () => Promise<T>): Promise<T> {
    await acquire();
    const startedAt = now();
    try {
      return await work();
    } finally {
      release(startedAt);
    }
  }

  return {
    hash: (password) => bounded(() => hasher.hash(password)),
    verify: (hash, password) => bounded(() => hasher.verify(hash, password)),
    // Made once (one hash, at the first sign-in for an unknown name), then only handed out.
    decoyHash: () => hasher.decoyHash(),
    stats: () => ({ running, queued: queue.length }),
  };
}
