import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { documentedFetch } from '../support/documented-answers.ts';

describe('HTTP surface on PostgreSQL and Redis', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  // Every answer below is held to /openapi.json (test/support/documented-answers.ts).
  const fetch = documentedFetch(() => tessera.url);

  beforeAll(async () => {
    db = await createTestDatabase();
    tessera = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix });
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it('GET /healthz says the process is alive', async () => {
    const res = await fetch(`${tessera.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('GET /readyz reports PostgreSQL and Redis up', async () => {
    const res = await fetch(`${tessera.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: 'ready',
      checks: { database: { status: 'up', kind: 'postgres' }, ephemeral: { status: 'up', kind: 'redis' } },
    });
  });

  it('answers unknown routes with 404 in the JSON error shape', async () => {
    const res = await fetch(`${tessera.url}/no/such/thing`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ message: 'No route for GET /no/such/thing.', status: 404 });
  });

  it('answers a wrong method with 405 and an Allow header', async () => {
    const res = await fetch(`${tessera.url}/healthz`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect(await res.json()).toMatchObject({ status: 405 });
  });

  it('answers a body over the limit with 413 and malformed JSON with 400', async () => {
    const big = await fetch(`${tessera.url}/healthz`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: 'y'.repeat(200_000) }) });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ status: 413, message: expect.stringMatching(/too large/) });
    const bad = await fetch(`${tessera.url}/healthz`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ message: 'Request body is not valid JSON.', status: 400 });
  });

  it('sends security headers and a locked-down CSP', async () => {
    const res = await fetch(`${tessera.url}/healthz`);
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-powered-by')).toBeNull();
  });

  it('created the first admin with the configured password', async () => {
    const result = await tessera.core.accounts.authenticate('admin', 'initial-admin-password');
    expect(result).toMatchObject({ ok: true, user: { username: 'admin', allowedScopes: ['read', 'deposit:write', 'deposit:actions', 'admin'] } });
  });

  it('keeps credentials out of the request log', async () => {
    await fetch(`${tessera.url}/healthz?access_token=tsr_secret_value&password=hunter22`, {
      headers: { authorization: 'Bearer tsr_header_secret', cookie: 'sid=cookie_secret', 'x-session': 'session_secret' },
    });
    const logs = tessera.logs.text;
    // The path and the query's parameter names, never a value (log-redaction.test.ts tries every spelling).
    expect(logs).toMatch(/"url":"\/healthz\?access_token&password"/);
    expect(logs).not.toMatch(/tsr_secret_value|hunter22|tsr_header_secret|cookie_secret|session_secret|initial-admin-password/);
  });

  it('answered as /openapi.json says, every time (the answers checked above)', () => {
    expect([...fetch.checked]).toEqual(expect.arrayContaining(['GET /healthz 200', 'GET /readyz 200']));
  });
});

describe('HTTPS issuer behind a trusted proxy', () => {
  let db: TestDatabase;
  let tessera: TestTessera;

  beforeAll(async () => {
    db = await createTestDatabase();
    tessera = await startTestTessera({
      ISSUER: 'https://auth.example.org',
      TESSERA_KEY_SECRET: 'test-key-encryption-secret-0123456789',
      TESSERA_COOKIE_KEYS: 'test-cookie-key-0123456789abcdefghijkl',
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      TESSERA_REDIS_PREFIX: uniqueRedisPrefix(),
      TESSERA_TRUST_PROXY: 'loopback',
    });
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
  });

  it('refuses a request that reached it over plain http', async () => {
    const res = await fetch(`${tessera.url}/no-such-page`, { headers: { 'x-forwarded-proto': 'http' } });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ message: 'HTTPS is required.', status: 403 });
  });

  it('serves a request the trusted proxy says came over https, with HSTS', async () => {
    const res = await fetch(`${tessera.url}/no-such-page`, { headers: { 'x-forwarded-proto': 'https' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=/);
  });

  it('applies the same rule on the endpoints served ahead of express (token, introspection)', async () => {
    // Past the https rule both go on to client authentication, which fails: no client.
    for (const [path, refused] of [['/oauth/token', 400], ['/oauth/introspect', 401]] as const) {
      const post = (proto: string) =>
        fetch(`${tessera.url}${path}`, { method: 'POST', headers: { 'x-forwarded-proto': proto, 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': 'req-1' }, body: 'grant_type=client_credentials&token=x' });
      const plain = await post('http');
      expect(plain.status).toBe(403);
      expect(await plain.json()).toEqual({ error: 'invalid_request', error_description: 'HTTPS is required' });
      expect(plain.headers.get('x-request-id')).toBe('req-1');
      const secure = await post('https');
      expect(secure.status).toBe(refused);
      expect(secure.headers.get('strict-transport-security')).toMatch(/max-age=/);
      expect(secure.headers.get('cache-control')).toBe('no-store');
      expect(secure.headers.get('x-content-type-options')).toBe('nosniff');
      expect(secure.headers.get('x-request-id')).toBe('req-1');
    }
  });

  it('leaves health checks reachable over http for the orchestrator', async () => {
    expect((await fetch(`${tessera.url}/healthz`)).status).toBe(200);
  });
});
