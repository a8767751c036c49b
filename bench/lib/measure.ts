import type { AutocannonInput } from '../load/autocannon.ts';
import type { FixedRequest } from '../load/fixed-request.ts';
import type { BulkInput, BulkResult } from '../load/bulk.ts';
import { wrkLoad, wrkVersion } from '../load/wrk.ts';
import { runChild } from './child.ts';
import { startCpuMeter, type CpuUse } from './cpu.ts';
import { summarise, type Measured, type RunFigures } from './stats.ts';

/** The processes whose CPU time a measurement reports (see cpu.ts). */
export interface Watched {
  /** The server (with its workers, if it forks any). */
  serverPid?: number;
  /** Redis: one server, or every node of a cluster. */
  redisPid?: number | number[];
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
  const number = (name: string, fallback: number, zeroAllowed = false) => {
    const value = env[name];
    if (value === undefined || value === '') return fallback;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < 0 || (parsed === 0 && !zeroAllowed)) throw new Error(`${name} must be a ${zeroAllowed ? 'non-negative' : 'positive'} number, not ${JSON.stringify(value)}`);
    return parsed;
  };
  return {
    connections: number('BENCH_CONNECTIONS', 32),
    warmupSeconds: number('BENCH_WARMUP_SECONDS', 0, true),
    runs: Math.round(number('BENCH_RUNS', 9)),
    runSeconds: number('BENCH_RUN_SECONDS', 1),
    firstWarmupSeconds: number('BENCH_FIRST_WARMUP_SECONDS', 3),
  };
}

/** The load generator for fixed requests: wrk where it is installed, else autocannon. */
export interface FixedLoadGenerator {
  name: 'wrk' | 'autocannon';
  /** wrk's (autocannon's is a devDependency, in the report's versions). */
  version?: string;
  /** Why autocannon, when BENCH_LOAD did not ask for it. */
  reason?: string;
}

export function fixedLoadGenerator(env: NodeJS.ProcessEnv = process.env): FixedLoadGenerator {
  const wanted = env.BENCH_LOAD || undefined;
  if (wanted !== undefined && wanted !== 'wrk' && wanted !== 'autocannon') throw new Error(`BENCH_LOAD must be wrk or autocannon, not ${JSON.stringify(wanted)}`);
  if (wanted === 'autocannon') return { name: 'autocannon' };
  const version = wrkVersion();
  if (version) return { name: 'wrk', version };
  if (wanted === 'wrk') throw new Error('BENCH_LOAD=wrk, but there is no wrk on the PATH (Debian: apt-get install wrk)');
  return { name: 'autocannon', reason: 'wrk is not installed (Debian: apt-get install wrk): autocannon takes more of the cores and starts slower' };
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
 * in turns, a slow minute slows every contender alike instead of one, and every other round runs
 * them in reverse, so that a drift within a round favours none of them. Each figure is the median
 * of its runs; `warmed` lists the servers that have been measured before (and grows).
 */
export async function inRounds(timing: Timing, contenders: Contender[], warmed: Set<string>): Promise<Map<string, Measured>> {
  const runs = new Map(contenders.map((c) => [c.name, [] as RunFigures[]]));
  const cpu = new Map(contenders.map((c) => [c.name, [] as CpuUse[]]));
  for (let round = 0; round < timing.runs; round++) {
    // Every other round in reverse: a drift in speed over a round falls alike on first and last.
    for (const contender of round % 2 ? [...contenders].reverse() : contenders) {
      const warmup = warmed.has(contender.server) ? timing.warmupSeconds : Math.max(timing.warmupSeconds, timing.firstWarmupSeconds);
      warmed.add(contender.server);
      const measurement = await measured(contender.watched, () => contender.run(warmup));
      runs.get(contender.name)!.push(measurement.result);
      cpu.get(contender.name)!.push(measurement.cpu);
    }
  }
  return new Map(contenders.map((c) => [c.name, { ...summarise(runs.get(c.name)!), cpu: meanCpu(cpu.get(c.name)!) }]));
}

/** A fixed request as the bench writes one: a form POST unless it says otherwise. */
export type FormRequest = Omit<FixedRequest, 'method'> & { method?: string };

/**
 * One run of a fixed request at full speed (a Contender's run): with wrk, one wrk process of
 * `runSeconds` after a run of `warmupSeconds` (if any); with autocannon, a process of its own that
 * warms up and runs.
 */
export function fixedLoadRun(timing: Timing, generator: FixedLoadGenerator, request: FormRequest): (warmupSeconds: number) => Promise<RunFigures> {
  const full: FixedRequest = { ...request, method: request.method ?? 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...request.headers } };
  if (generator.name === 'wrk') {
    const wrk = wrkLoad(full, timing.connections);
    return async (warmupSeconds) => {
      if (warmupSeconds > 0) await wrk(warmupSeconds);
      return wrk(timing.runSeconds);
    };
  }
  return async (warmupSeconds) => {
    const input: AutocannonInput = { ...full, connections: timing.connections, warmupSeconds, runs: 1, runSeconds: timing.runSeconds };
    return (await runChild<{ runs: RunFigures[] }>('bench/load/autocannon.ts', input)).runs[0]!;
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
