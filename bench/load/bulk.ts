/**
 * Many form POSTs, `connections` at a time, each expected to answer 200: to create things in bulk
 * (access tokens, device codes) or to present each of many tokens once. With `collect`, the named
 * member of each JSON answer is returned (e.g. `device_code`).
 *
 * Input (JSON on stdin): BulkInput. Output: BulkResult.
 */
import { performance } from 'node:perf_hooks';
import { readInput, writeResult } from '../lib/child.ts';
import { round2 } from '../lib/stats.ts';
import { createHttpClient, json } from './http-client.ts';

export interface BulkInput {
  url: string;
  path: string;
  headers?: Record<string, string>;
  /** The same body `count` times, or … */
  body?: string;
  count?: number;
  /** … one request per body. */
  bodies?: string[];
  connections: number;
  /** A text each answer must contain to count as ok (besides status 200). */
  expect?: string;
  collect?: string;
}

export interface BulkResult {
  ok: number;
  failed: Record<string, number>;
  seconds: number;
  collected: string[];
}

const input = await readInput<BulkInput>();
const count = input.bodies?.length ?? input.count ?? 0;
const client = createHttpClient(input.url, input.connections, 30_000);
const failed: Record<string, number> = {};
const collected: string[] = [];
let ok = 0;
let next = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: Math.min(input.connections, count) }, async () => {
    while (next < count) {
      const index = next++;
      const answer = await client.post(input.path, input.bodies?.[index] ?? input.body ?? '', input.headers);
      if (answer.status === 200 && (!input.expect || answer.body.includes(input.expect))) {
        ok += 1;
        if (input.collect) collected.push(String(json(answer)?.[input.collect]));
      } else {
        const key = `${answer.status} ${answer.error ?? answer.body.slice(0, 80)}`;
        failed[key] = (failed[key] ?? 0) + 1;
      }
    }
  }),
);
client.close();
writeResult({ ok, failed, seconds: round2((performance.now() - started) / 1000), collected } satisfies BulkResult);
