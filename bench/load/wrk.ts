/**
 * A fixed request at full speed with wrk (Debian's, written in C): the default load generator for
 * fixed requests. wrk is a process of its own, started straight from the orchestrator for each run
 * (a few milliseconds, where a Node.js load generator takes most of a second to start), so that
 * figures compared as ratios can be measured in many short turns; and it takes much less of the
 * two cores than a JavaScript load generator, so that what is measured is the server.
 *
 * A Lua script sends the request and checks every answer (a 2xx status and `expect` in the body);
 * anything else counts as failed and not in the throughput. Latency percentiles are wrk's own (to
 * the microsecond). wrk runs whole seconds only: a duration is rounded up.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { round2, type RunFigures } from '../lib/stats.ts';
import type { FixedRequest } from './fixed-request.ts';

const run = promisify(execFile);
const lua = (value: string) => JSON.stringify(value); // a JSON string is a valid Lua string literal for these values

/** wrk's version line, or undefined when there is no wrk on the PATH. */
export function wrkVersion(): string | undefined {
  const probe = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if (probe.error) return undefined;
  return /wrk (\S+)/.exec(`${probe.stdout}${probe.stderr}`)?.[1] ?? 'unknown version';
}

function script(request: FixedRequest): string {
  const headers = Object.entries(request.headers ?? {})
    .map(([name, value]) => `wrk.headers[${lua(name)}] = ${lua(value)}`)
    .join('\n');
  return `
wrk.method = ${lua(request.method)}
${request.body !== undefined ? `wrk.body = ${lua(request.body)}` : ''}
${headers}
local threads = {}
function setup(thread) table.insert(threads, thread) end
bad = 0
function response(status, headers, body)
  if status < 200 or status >= 300 or not string.find(body, ${lua(request.expect)}, 1, true) then bad = bad + 1 end
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

/** Where the Lua scripts go: one directory for the whole benchmark, removed when it exits. */
let scriptDir: string | undefined;
function scriptPath(): string {
  if (!scriptDir) {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-wrk-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    scriptDir = dir;
  }
  return join(scriptDir, `request-${randomUUID()}.lua`);
}

/** A fixed request loaded with wrk: each call is one run of wrk on `connections` keep-alive connections. */
export function wrkLoad(request: FixedRequest, connections: number): (seconds: number) => Promise<RunFigures> {
  for (const value of [request.url, ...Object.keys(request.headers ?? {}), ...Object.values(request.headers ?? {}), request.body ?? '', request.expect]) {
    if (/[\\\n\r]/.test(value)) throw new Error('wrk: values with backslashes or line breaks are not supported');
  }
  const scriptFile = scriptPath();
  writeFileSync(scriptFile, script(request));
  return async (seconds) => {
    const { stdout } = await run('wrk', ['-t1', `-c${connections}`, `-d${Math.max(1, Math.ceil(seconds))}s`, '--timeout', '10s', '-s', scriptFile, request.url], { maxBuffer: 1 << 20 });
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
    const r = JSON.parse(line.slice('RESULT '.length)) as { requests: number; durationUs: number; p50Us: number; p99Us: number; bad: number; errors: number };
    const good = r.requests - r.bad;
    return { rps: good / (r.durationUs / 1e6), p50Ms: round2(r.p50Us / 1000), p99Ms: round2(r.p99Us / 1000), failed: r.bad + r.errors, total: r.requests };
  };
}
