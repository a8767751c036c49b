import { performance } from 'node:perf_hooks';

/** Tells whether the process is busy serving requests right now. */
export interface LoadGauge {
  isBusy(): boolean;
}

export interface EventLoopGaugeOptions {
  /** Busy when the event loop was working at least this share of the window (0–1). */
  threshold?: number;
  /** The shortest window measured: calls within it reuse the last answer. */
  windowMs?: number;
}

/**
 * Busy when the event loop's utilisation over the last window reached the threshold. Measured when
 * asked, at most once per window (no timer); after a quiet spell the first answer averages it.
 */
export function createEventLoopGauge({ threshold = 0.5, windowMs = 100 }: EventLoopGaugeOptions = {}): LoadGauge {
  if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`threshold must be in (0, 1], got ${threshold}`);
  if (!(windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${windowMs}`);
  let mark = performance.eventLoopUtilization();
  let markedAt = performance.now();
  let busy = false;
  return {
    isBusy() {
      const now = performance.now();
      if (now - markedAt >= windowMs) {
        const current = performance.eventLoopUtilization();
        busy = performance.eventLoopUtilization(current, mark).utilization >= threshold;
        mark = current;
        markedAt = now;
      }
      return busy;
    },
  };
}
