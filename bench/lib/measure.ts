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
    warmupSeconds: number('BENCH_WARMUP_SECONDS', 1),
    runs: Math.round(number('BENCH_RUNS', 3)),
    runSeconds: number('BENCH_RUN_SECONDS', 4),
    firstWarmupSeconds: number('BENCH_FIRST_WARMUP_SECONDS', 3),
  };
}

/** A POST at full speed with autocannon in its own process: the median of the runs. */
export async function hammer(
  timing: Timing,
  watched: Watched,
  request: { url: string; headers?: Record<string, string>; body: string; expect: string; first?: boolean },
): Promise<Measured> {
  const input: AutocannonInput = {
    url: request.url,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...request.headers },
    body: request.body,
    connections: timing.connections,
    warmupSeconds: request.first ? Math.max(timing.warmupSeconds, timing.firstWarmupSeconds) : timing.warmupSeconds,
    runs: timing.runs,
    runSeconds: timing.runSeconds,
    expect: request.expect,
  };
  const { result, cpu } = await measured(watched, () => runChild<{ runs: RunFigures[] }>('bench/load/autocannon.ts', input));
  return { ...summarise(result.runs), cpu };
}

/** Many POSTs in a separate process (creating things in bulk); throws when any failed. */
export async function bulk(input: BulkInput): Promise<BulkResult> {
  const result = await runChild<BulkResult>('bench/load/bulk.ts', input);
  const failures = Object.entries(result.failed);
  if (failures.length) throw new Error(`bulk POST ${input.path}: ${failures.map(([k, v]) => `${v}× ${k}`).join('; ')}`);
  return result;
}

export const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
