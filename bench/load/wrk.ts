/**
 * A fixed request at full speed with wrk (Debian's, written in C), in a process of its own: the
 * same input and output as autocannon.ts, for a machine where a JavaScript load generator would
 * take too much of the cores it shares with the server. A Lua script sends the request and checks
 * every answer (a 2xx status and `expect` in the body); anything else counts as failed and not in
 * the throughput. Latency percentiles are wrk's own (to the microsecond). Whole seconds only: a
 * warm-up under 1 s is rounded up.
 *
 * Input (JSON on stdin): AutocannonInput. Output: `{"runs":[RunFigures,…]}`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readInput, writeResult } from '../lib/child.ts';
import { round2, type RunFigures } from '../lib/stats.ts';
import type { AutocannonInput } from './autocannon.ts';

const run = promisify(execFile);
const lua = (value: string) => JSON.stringify(value); // a JSON string is a valid Lua string literal for these values

function script(input: AutocannonInput): string {
  const headers = Object.entries(input.headers ?? {})
    .map(([name, value]) => `wrk.headers[${lua(name)}] = ${lua(value)}`)
    .join('\n');
  return `
wrk.method = ${lua(input.method ?? 'POST')}
${input.body !== undefined ? `wrk.body = ${lua(input.body)}` : ''}
${headers}
local threads = {}
function setup(thread) table.insert(threads, thread) end
bad = 0
function response(status, headers, body)
  if status < 200 or status >= 300 or not string.find(body, ${lua(input.expect)}, 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + (t:get("bad") or 0) end
  local e = summary.errors
  io.write(string.format('\\nRESULT {"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"bad":%d,"errors":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), b, e.connect + e.read + e.write + e.timeout))
end
`;
}

const input = await readInput<AutocannonInput>();
for (const char of [input.url, ...Object.keys(input.headers ?? {}), ...Object.values(input.headers ?? {}), input.body ?? '', input.expect]) {
  if (/[\\\n\r]/.test(char)) throw new Error('wrk.ts: values with backslashes or line breaks are not supported');
}
const dir = mkdtempSync(join(tmpdir(), 'tessera-wrk-'));
const scriptFile = join(dir, 'request.lua');
writeFileSync(scriptFile, script(input));

async function once(seconds: number): Promise<RunFigures> {
  const { stdout } = await run('wrk', ['-t1', `-c${input.connections}`, `-d${Math.max(1, Math.ceil(seconds))}s`, '--timeout', '10s', '-s', scriptFile, input.url], { maxBuffer: 1 << 20 });
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
  const r = JSON.parse(line.slice('RESULT '.length)) as { requests: number; durationUs: number; p50Us: number; p99Us: number; bad: number; errors: number };
  const good = r.requests - r.bad;
  return { rps: good / (r.durationUs / 1e6), p50Ms: round2(r.p50Us / 1000), p99Ms: round2(r.p99Us / 1000), failed: r.bad + r.errors, total: r.requests };
}

try {
  if (input.warmupSeconds > 0) await once(input.warmupSeconds);
  const runs: RunFigures[] = [];
  for (let i = 0; i < input.runs; i++) runs.push(await once(input.runSeconds));
  writeResult({ runs });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
