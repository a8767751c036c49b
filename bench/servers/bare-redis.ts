/**
 * Reference server (a): the limit for a Redis-backed design. A bare node:http server that answers
 * each introspection with one Redis GET: it reads the form body, looks up the SHA-256 digest of
 * the token under its prefix, and answers `{"active":true,...}` with the stored claims, or
 * `{"active":false}`. No caller authentication, no cache, no framework.
 *
 * Run as its own process: `node bench/servers/bare-redis.ts`, with REDIS_URL, BENCH_REDIS_PREFIX
 * and PORT (0 for any). Prints one JSON line `{"listening":"http://127.0.0.1:…"}` on stdout.
 * With BENCH_SEED_TOKEN set, it first stores that token (an active answer) under the prefix.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';

const prefix = process.env.BENCH_REDIS_PREFIX ?? 'bench:bare:';
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const keyOf = (token: string) => `${prefix}at:${createHash('sha256').update(token).digest('base64url')}`;

const seed = process.env.BENCH_SEED_TOKEN;
if (seed) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { scope: 'read', client_id: 'bench-service', sub: 'bench-service', token_type: 'Bearer', credential_kind: 'access_token', iat: now, exp: now + 3600, aud: 'urn:tessera:api' };
  await redis.set(keyOf(seed), JSON.stringify(claims), 'EX', 3600);
}

const INACTIVE = '{"active":false}';
const headers = (length: number) => ({ 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': length });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const token = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('token');
    if (!token) {
      res.writeHead(400, headers(27)).end('{"error":"invalid_request"}');
      return;
    }
    redis.get(keyOf(token)).then(
      (stored) => {
        const body = stored ? `{"active":true,${stored.slice(1)}` : INACTIVE;
        res.writeHead(200, headers(Buffer.byteLength(body))).end(body);
      },
      () => res.writeHead(503, headers(36)).end('{"error":"temporarily_unavailable"}'),
    );
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listening: `http://127.0.0.1:${port}` })}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  redis.quit().finally(() => process.exit(0));
});
