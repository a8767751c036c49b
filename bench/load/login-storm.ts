/**
 * Password logins at full concurrency: `connections` loops each POST /users/{u}/login with a
 * correct password, over the given users in turn. Tessera bounds argon2 work and answers 503
 * (Retry-After) when its queue is full: those are counted, as is anything else but 200.
 *
 * Two modes. `timed`: a warm-up, then measured runs (logins per second = 200 answers per second).
 * `until-stopped`: runs until SIGTERM (while the orchestrator measures something else), then
 * reports its totals.
 *
 * Input (JSON on stdin): LoginInput. Output: LoginResult.
 */
import { performance } from 'node:perf_hooks';
import { readInput, writeResult } from '../lib/child.ts';
import { LatencyRecorder, round2, type RunFigures } from '../lib/stats.ts';
import { createHttpClient, forSeconds } from './http-client.ts';

export interface LoginInput {
  url: string;
  users: { username: string; password: string }[];
  connections: number;
  mode: 'timed' | 'until-stopped';
  warmupSeconds?: number;
  runs?: number;
  runSeconds?: number;
}

export interface LoginResult {
  runs: RunFigures[];
  /** until-stopped: the whole storm. */
  seconds: number;
  answers: Record<string, number>;
}

const input = await readInput<LoginInput>();
const client = createHttpClient(input.url, input.connections, 30_000);
const bodies = input.users.map((user) => new URLSearchParams({ password: user.password }).toString());
const paths = input.users.map((user) => `/users/${encodeURIComponent(user.username)}/login`);
const answers: Record<string, number> = {};
let turn = 0;

async function login(latencies: LatencyRecorder): Promise<boolean> {
  const user = turn;
  turn = (turn + 1) % bodies.length;
  const answer = await client.post(paths[user]!, bodies[user]!);
  const key = answer.status === 0 ? `error ${answer.error ?? ''}` : String(answer.status);
  answers[key] = (answers[key] ?? 0) + 1;
  if (answer.status === 200) {
    latencies.record(answer.ms);
    return true;
  }
  return false;
}

async function phase(seconds: number): Promise<RunFigures> {
  const latencies = new LatencyRecorder();
  let ok = 0;
  let failed = 0;
  const elapsed = await forSeconds(seconds, input.connections, async () => {
    if (await login(latencies)) ok += 1;
    else failed += 1;
  });
  const [p50, p99] = latencies.percentiles(50, 99);
  return { rps: ok / elapsed, p50Ms: round2(p50!), p99Ms: round2(p99!), failed, total: ok + failed };
}

if (input.mode === 'timed') {
  if ((input.warmupSeconds ?? 0) > 0) await phase(input.warmupSeconds!);
  const runs: RunFigures[] = [];
  for (let i = 0; i < (input.runs ?? 1); i++) runs.push(await phase(input.runSeconds ?? 5));
  client.close();
  writeResult({ runs, seconds: 0, answers } satisfies LoginResult);
} else {
  let stopping = false;
  process.once('SIGTERM', () => (stopping = true));
  const latencies = new LatencyRecorder();
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: input.connections }, async () => {
      while (!stopping) {
        if (await login(latencies)) ok += 1;
        else failed += 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const [p50, p99] = latencies.percentiles(50, 99);
  client.close();
  writeResult({ runs: [{ rps: ok / seconds, p50Ms: round2(p50!), p99Ms: round2(p99!), failed, total: ok + failed }], seconds: round2(seconds), answers } satisfies LoginResult);
}
