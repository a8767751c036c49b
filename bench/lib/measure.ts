import type { AutocannonInput } from '../load/autocannon.ts';
import type { BulkInput, BulkResult } from '../load/bulk.ts';
import { runChild } from './child.ts';
import { startCpuMeter, type CpuUse } from './cpu.ts';
import { summarise, type Measured, type RunFigures } from './stats.ts';

/** The processes whose CPU time a measurement reports (see cpu.ts). */
export interface Watched {
  serverPid?: number;
  redisPid?: number;
}

/** Runs a load generator (a child process) and reports where the CPU went meanwhile. */
export async function measured<T>(watched: Watched, generator: () => Promise<T>): Promise<{ result: T; cpu: CpuUse }> {
  const meter = startCpuMeter(watched.serverPid, watched.redisPid);
  const result = await generator();
  return { result, cpu: meter.stop() };
}

/** How long each figure is measured (from the environment, with the defaults of `npm run bench`). */
export interface Timing {
  connections: number;
  warmupSeconds: number;
  runs: number;
  runSeconds: number;
  /** The first figure measured on a freshly started server warms up this long (JIT, pools, caches). */
  firstWarmupSeconds: number;
}

export function timingFromEnv(env: NodeJS.ProcessEnv = process.env): Timing {
  const number = (name: string, fallback: number) => {
    const value = env[name];
    if (value === undefined || value === '') return fallback;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(value)}`);
    return parsed;
  };
  return {
    connections: number('BENCH_CONNECTIONS', 32),
    warmupSeconds: number('BENCH_WARMUP_SECONDS', 0.5),
    runs: Math.round(number('BENCH_RUNS', 3)),
    runSeconds: number('BENCH_RUN_SECONDS', 3),
    firstWarmupSeconds: number('BENCH_FIRST_WARMUP_SECONDS', 3),
  };
}

/**
 * One figure measured in rounds beside others: the server it loads and one run of its load
 * generator (in its own process) of `runSeconds` after `warmupSeconds`.
 */
export interface Contender {
  name: string;
  /** Which server it loads: the first figure measured on each server warms up longer. */
  server: string;
  watched: Watched;
  run(warmupSeconds: number): Promise<RunFigures>;
}

const meanCpu = (uses: CpuUse[]): CpuUse => {
  const mean = (pick: (use: CpuUse) => number) => Math.round(uses.reduce((sum, use) => sum + pick(use), 0) / uses.length);
  return { server: mean((u) => u.server), generator: mean((u) => u.generator), redis: mean((u) => u.redis), other: mean((u) => u.other), machine: mean((u) => u.machine) };
};

/**
 * Figures that are compared as ratios, measured in turns: round after round, one run of each.
 * The machine's speed drifts (other tenants, frequency), by more than the differences measured;
 * in turns, a slow minute slows every contender alike instead of one. Each figure is the median
 * of its runs; `warmed` lists the servers that have been measured before (and grows).
 */
export async function inRounds(timing: Timing, contenders: Contender[], warmed: Set<string>): Promise<Map<string, Measured>> {
  const runs = new Map(contenders.map((c) => [c.name, [] as RunFigures[]]));
  const cpu = new Map(contenders.map((c) => [c.name, [] as CpuUse[]]));
  for (let round = 0; round < timing.runs; round++) {
    for (const contender of contenders) {
      const warmup = warmed.has(contender.server) ? timing.warmupSeconds : Math.max(timing.warmupSeconds, timing.firstWarmupSeconds);
      warmed.add(contender.server);
      const measurement = await measured(contender.watched, () => contender.run(warmup));
      runs.get(contender.name)!.push(measurement.result);
      cpu.get(contender.name)!.push(measurement.cpu);
    }
  }
  return new Map(contenders.map((c) => [c.name, { ...summarise(runs.get(c.name)!), cpu: meanCpu(cpu.get(c.name)!) }]));
}

/** One run of a POST at full speed with autocannon in its own process (a Contender's run). */
export function autocannonRun(timing: Timing, request: { url: string; headers?: Record<string, string>; body: string; expect: string }): (warmupSeconds: number) => Promise<RunFigures> {
  return async (warmupSeconds) => {
    const input: AutocannonInput = {
      url: request.url,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...request.headers },
      body: request.body,
      connections: timing.connections,
      warmupSeconds,
      runs: 1,
      runSeconds: timing.runSeconds,
      expect: request.expect,
    };
    return (await runChild<{ runs: RunFigures[] }>(process.env.BENCH_LOAD === 'wrk' ? 'bench/load/wrk.ts' : 'bench/load/autocannon.ts', input)).runs[0]!;
  };
}

/** Many POSTs in a separate process (creating things in bulk); throws when any failed. */
export async function bulk(input: BulkInput): Promise<BulkResult> {
  const result = await runChild<BulkResult>('bench/load/bulk.ts', input);
  const failures = Object.entries(result.failed);
  if (failures.length) throw new Error(`bulk POST ${input.path}: ${failures.map(([k, v]) => `${v}× ${k}`).join('; ')}`);
  return result;
}

export const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
