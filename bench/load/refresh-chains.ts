/**
 * Refresh-token grants per second, as real clients do them: each of N concurrent chains refreshes
 * with the refresh token its previous refresh returned (tokens rotate: the old one is consumed).
 * A keep-alive agent with one connection per chain. A chain whose refresh fails stops (its token
 * is gone); failures are counted and reported.
 *
 * Input (JSON on stdin): RefreshInput. Output: RefreshResult — with the chains' current refresh
 * tokens, to go on from in a later run (the chains that failed are left out).
 */
import { readInput, writeResult } from '../lib/child.ts';
import { LatencyRecorder, round2, type RunFigures } from '../lib/stats.ts';
import { createHttpClient, forSeconds, json } from './http-client.ts';

export interface RefreshInput {
  url: string;
  tokenPath: string;
  clientId: string;
  refreshTokens: string[];
  warmupSeconds: number;
  runs: number;
  runSeconds: number;
}

export interface RefreshResult {
  runs: RunFigures[];
  chainsAlive: number;
  failures: Record<string, number>;
  /** The current refresh token of each chain still alive. */
  refreshTokens: string[];
}

const input = await readInput<RefreshInput>();
const tokens = [...input.refreshTokens];
const alive = tokens.map(() => true);
const client = createHttpClient(input.url, tokens.length);
const failures: Record<string, number> = {};

async function phase(seconds: number): Promise<RunFigures> {
  const latencies = new LatencyRecorder();
  let ok = 0;
  let failed = 0;
  let total = 0;
  const elapsed = await forSeconds(seconds, tokens.length, async (chain) => {
    if (!alive[chain]) return false;
    const body = new URLSearchParams({ grant_type: 'refresh_token', client_id: input.clientId, refresh_token: tokens[chain]! }).toString();
    const answer = await client.post(input.tokenPath, body);
    total += 1;
    const parsed = json(answer);
    if (answer.status === 200 && typeof parsed?.refresh_token === 'string' && typeof parsed.access_token === 'string') {
      tokens[chain] = parsed.refresh_token;
      ok += 1;
      latencies.record(answer.ms);
      return true;
    }
    failed += 1;
    const reason = `${answer.status} ${String(parsed?.error ?? answer.error ?? answer.body.slice(0, 80))}`;
    failures[reason] = (failures[reason] ?? 0) + 1;
    alive[chain] = false;
    return false;
  });
  const [p50, p99] = latencies.percentiles(50, 99);
  return { rps: ok / elapsed, p50Ms: round2(p50!), p99Ms: round2(p99!), failed, total };
}

if (input.warmupSeconds > 0) await phase(input.warmupSeconds);
const runs: RunFigures[] = [];
for (let i = 0; i < input.runs; i++) runs.push(await phase(input.runSeconds));
client.close();
const result: RefreshResult = { runs, chainsAlive: alive.filter(Boolean).length, failures, refreshTokens: tokens.filter((_, chain) => alive[chain]) };
writeResult(result);
