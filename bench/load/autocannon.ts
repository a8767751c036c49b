/**
 * A fixed request at full speed, in a process of its own: autocannon (its JS API), the load
 * generator where wrk is not installed (bench/load/wrk.ts), with a number of
 * keep-alive connections, a warm-up, then several measured runs back to back. Every answer is
 * checked (status 2xx and `expect` found in the body); anything else counts as failed and not in
 * the throughput. Latencies are recorded to the microsecond from autocannon's response events
 * (its own histogram rounds to whole milliseconds).
 *
 * Input (JSON on stdin): see AutocannonInput. Output: `{"runs":[RunFigures,…]}`.
 */
import autocannon from 'autocannon';
import { readInput, writeResult } from '../lib/child.ts';
import { LatencyRecorder, round2, type RunFigures } from '../lib/stats.ts';
import type { FixedRequest } from './fixed-request.ts';

export interface AutocannonInput extends FixedRequest {
  connections: number;
  warmupSeconds: number;
  runs: number;
  runSeconds: number;
}

function once(input: AutocannonInput, seconds: number): Promise<RunFigures> {
  const latencies = new LatencyRecorder();
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: input.url,
        method: input.method,
        headers: input.headers ?? {},
        ...(input.body !== undefined ? { body: input.body } : {}),
        connections: input.connections,
        duration: seconds,
        timeout: 10,
        verifyBody: (body) => body.includes(input.expect),
      },
      (error, result) => {
        if (error) {
          reject(error);
          return;
        }
        const good = result['2xx'] - result.mismatches;
        const [p50, p99] = latencies.percentiles(50, 99);
        resolve({
          rps: good / result.duration,
          p50Ms: round2(p50!),
          p99Ms: round2(p99!),
          failed: result.errors + result.timeouts + result.non2xx + result.mismatches,
          total: result.requests.total,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode < 300) latencies.record(responseTime);
    });
  });
}

const input = await readInput<AutocannonInput>();
if (input.warmupSeconds > 0) await once(input, input.warmupSeconds);
const runs: RunFigures[] = [];
for (let i = 0; i < input.runs; i++) runs.push(await once(input, input.runSeconds));
writeResult({ runs });
