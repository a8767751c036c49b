/** Small statistics for the benchmark: medians of runs and latency percentiles. */

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Latencies in milliseconds, recorded as they come, for percentiles at the end. */
export class LatencyRecorder {
  private values = new Float64Array(1 << 16);
  private count = 0;

  record(ms: number): void {
    if (this.count === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.count++] = ms;
  }

  get size(): number {
    return this.count;
  }

  /** The p-th percentile (0–100), nearest rank; NaN when nothing was recorded. */
  percentiles(...ps: number[]): number[] {
    if (this.count === 0) return ps.map(() => Number.NaN);
    const sorted = this.values.slice(0, this.count).sort();
    return ps.map((p) => sorted[Math.min(this.count - 1, Math.max(0, Math.ceil((p / 100) * this.count) - 1))]!);
  }

  reset(): void {
    this.count = 0;
  }
}

/** One measured run: throughput and latency. */
export interface RunFigures {
  /** Successful (2xx, expected answer) requests per second. */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Requests that failed: connection errors, timeouts, unexpected status or body. */
  failed: number;
  total: number;
}

/** The median of several runs, figure by figure, with the runs kept for the report. */
export interface Measured {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
  runs: RunFigures[];
  /** Where the CPU went meanwhile, % of one core (lib/cpu.ts). */
  cpu?: { server: number; generator: number; redis: number; other: number; machine: number };
}

export function summarise(runs: RunFigures[]): Measured {
  return {
    rps: Math.round(median(runs.map((r) => r.rps))),
    p50Ms: round2(median(runs.map((r) => r.p50Ms))),
    p99Ms: round2(median(runs.map((r) => r.p99Ms))),
    failed: runs.reduce((sum, r) => sum + r.failed, 0),
    runs,
  };
}

export function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
