/**
 * Device-code polling with many devices pending at once. First every device polls once, all at
 * the same moment (one connection each): each must be answered authorization_pending. Then
 * `connections` loops poll the devices round robin, as fast as they are answered, for the
 * measured runs. Every answer must be authorization_pending or slow_down, and the right one:
 *
 * - slow_down is certain when even the widest reading of the two requests' times is shorter than
 *   the marker's life since the device's last authorization_pending (the server sets its marker
 *   while answering that poll and keeps it for the interval less the jitter it allows: a fifth of
 *   the interval, at most 1 s);
 * - authorization_pending is certain when even the narrowest reading is longer than that;
 * - in between (within the two requests' own durations) either is right.
 *
 * Anything else — another error, a token, a timeout, a dropped connection — is an error.
 * Input (JSON on stdin): DevicePollInput. Output: DevicePollResult.
 */
import { performance } from 'node:perf_hooks';
import { readInput, writeResult } from '../lib/child.ts';
import { LatencyRecorder, round2, type RunFigures } from '../lib/stats.ts';
import { createHttpClient, forSeconds, json } from './http-client.ts';

export interface DevicePollInput {
  url: string;
  tokenPath: string;
  clientId: string;
  deviceCodes: string[];
  intervalSeconds: number;
  connections: number;
  warmupSeconds: number;
  runs: number;
  runSeconds: number;
}

export interface DevicePollResult {
  burst: { devices: number; seconds: number; authorizationPending: number; other: Record<string, number> };
  runs: RunFigures[];
  answers: { authorizationPending: number; slowDown: number; wrong: number; errors: Record<string, number> };
}

const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';
/** Redis keeps TTLs to the millisecond; allow a little for clock reads. */
const SLACK_MS = 5;

const input = await readInput<DevicePollInput>();
const intervalMs = input.intervalSeconds * 1000;
/** How long the server's marker lives: the interval less the jitter it allows (RFC 8628 §3.5). */
const markerMs = intervalMs - Math.min(1000, intervalMs / 5);
const bodies = input.deviceCodes.map((deviceCode) => new URLSearchParams({ grant_type: GRANT_TYPE, client_id: input.clientId, device_code: deviceCode }).toString());
/** Per device: when its last authorization_pending poll was sent and answered. */
const lastPending = input.deviceCodes.map(() => ({ sent: Number.NEGATIVE_INFINITY, answered: Number.NEGATIVE_INFINITY }));
const answers: DevicePollResult['answers'] = { authorizationPending: 0, slowDown: 0, wrong: 0, errors: {} };

function classify(device: number, sent: number, answered: number, status: number, body: Record<string, unknown> | undefined, error?: string): 'pending' | 'slow_down' | 'error' {
  const code = body?.error;
  if (status === 400 && (code === 'authorization_pending' || code === 'slow_down')) {
    const last = lastPending[device]!;
    const widest = answered - last.sent; // the longest the marker can have lived by this poll
    const narrowest = sent - last.answered; // the shortest
    if (code === 'slow_down' && narrowest > markerMs + SLACK_MS) answers.wrong += 1;
    if (code === 'authorization_pending' && widest < markerMs - SLACK_MS) answers.wrong += 1;
    if (code === 'authorization_pending') {
      answers.authorizationPending += 1;
      lastPending[device] = { sent, answered };
      return 'pending';
    }
    answers.slowDown += 1;
    return 'slow_down';
  }
  const reason = `${status} ${String(code ?? error ?? 'unexpected answer')}`;
  answers.errors[reason] = (answers.errors[reason] ?? 0) + 1;
  return 'error';
}

// 1. Every device at once, one connection each.
const burstClient = createHttpClient(input.url, input.deviceCodes.length, 30_000);
const burstStarted = performance.now();
const burstAnswers = await Promise.all(
  bodies.map(async (body, device) => {
    const sent = performance.now();
    const answer = await burstClient.post(input.tokenPath, body);
    return classify(device, sent, performance.now(), answer.status, json(answer), answer.error);
  }),
);
const burstSeconds = (performance.now() - burstStarted) / 1000;
burstClient.close();
const burstOther: Record<string, number> = {};
for (const kind of burstAnswers) if (kind !== 'pending') burstOther[kind] = (burstOther[kind] ?? 0) + 1;

// 2. Round robin over every device, `connections` at a time.
const client = createHttpClient(input.url, input.connections);
let next = 0;
async function phase(seconds: number): Promise<RunFigures> {
  const latencies = new LatencyRecorder();
  let ok = 0;
  let failed = 0;
  const elapsed = await forSeconds(seconds, input.connections, async () => {
    const device = next;
    next = (next + 1) % bodies.length;
    const sent = performance.now();
    const answer = await client.post(input.tokenPath, bodies[device]!);
    const kind = classify(device, sent, performance.now(), answer.status, json(answer), answer.error);
    if (kind === 'error') failed += 1;
    else {
      ok += 1;
      latencies.record(answer.ms);
    }
  });
  const [p50, p99] = latencies.percentiles(50, 99);
  return { rps: ok / elapsed, p50Ms: round2(p50!), p99Ms: round2(p99!), failed, total: ok + failed };
}

if (input.warmupSeconds > 0) await phase(input.warmupSeconds);
const runs: RunFigures[] = [];
for (let i = 0; i < input.runs; i++) runs.push(await phase(input.runSeconds));
client.close();

const result: DevicePollResult = {
  burst: { devices: bodies.length, seconds: round2(burstSeconds), authorizationPending: burstAnswers.filter((k) => k === 'pending').length, other: burstOther },
  runs,
  answers,
};
writeResult(result);
