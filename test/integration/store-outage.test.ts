import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { HttpBrowser } from '../support/http-browser.ts';
import { freePort, killRedisServer, startRedisServer } from '../support/private-redis.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { basic, FORM } from '../support/token-requests.ts';
import { sumOf } from '../support/prometheus-text.ts';
import { documentedFetch } from '../support/documented-answers.ts';

// Every route with Redis down, then with PostgreSQL down: what needs the missing store answers
// 503 with Retry-After in its own shape (RFC 6749 JSON on the OAuth endpoints, the API's JSON on
// /api and the login, a page for the browser), and what does not need it keeps working. Redis is
// a private redis-server; PostgreSQL is reached through a TCP proxy that the test cuts.

const by = { actor: 'test' };
const RETRY_AFTER = '5';

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** The Tessera under test's origin, once it runs. */
let origin = '';
// Every answer of the JSON API below, its 503s included, is held to /openapi.json (documented-answers.ts).
const documented = documentedFetch(() => origin);

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await documented(url, { redirect: 'manual', signal: AbortSignal.timeout(10_000), ...init });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** 503 with Retry-After, as RFC 6749's JSON error. */
function expectOAuthUnavailable(answer: Answer) {
  expect({ status: answer.status, retryAfter: answer.headers.get('retry-after') }).toEqual({ status: 503, retryAfter: RETRY_AFTER });
  expect(answer.headers.get('content-type')).toMatch(/application\/json/);
  expect(JSON.parse(answer.text)).toMatchObject({ error: 'temporarily_unavailable' });
}

/** 503 with Retry-After, in the API's JSON error shape. */
function expectApiUnavailable(answer: Answer) {
  expect({ status: answer.status, retryAfter: answer.headers.get('retry-after') }).toEqual({ status: 503, retryAfter: RETRY_AFTER });
  expect(JSON.parse(answer.text)).toEqual({ message: 'The service is temporarily unavailable. Try again shortly.', status: 503 });
}

/** 503 with Retry-After, as a page. */
function expectPageUnavailable(answer: Answer) {
  expect({ status: answer.status, retryAfter: answer.headers.get('retry-after') }).toEqual({ status: 503, retryAfter: RETRY_AFTER });
  expect(answer.headers.get('content-type')).toMatch(/text\/html/);
  expect(answer.text).toMatch(/temporarily unavailable/i);
}

describe('every route while a store is down', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let redisPort: number;
  let redis: ChildProcess | undefined;
  let tessera: TestTessera;
  let issuer: URL;
  const secrets: Record<string, string> = {};
  let pat: string;
  let patForPostgresOutage: string;
  let apiSession: string;
  let browser: HttpBrowser;
  let opaqueToken: string;
  let consentUrl: string;
  let consentingBrowser: HttpBrowser;
  let cli: oidc.Configuration;

  const url = (path: string) => new URL(path, issuer).href;
  const clientCredentials = (clientId: string) =>
    call(url('/oauth/token'), { method: 'POST', headers: { ...FORM, authorization: basic(clientId, secrets[clientId]!) }, body: 'grant_type=client_credentials&scope=read' });
  const introspect = (token: string) =>
    call(url('/oauth/introspect'), { method: 'POST', headers: { ...FORM, authorization: basic('records-api', secrets['records-api']!) }, body: new URLSearchParams({ token }).toString() });

  /** An API session, and a browser signed in to the settings pages. */
  async function signIn() {
    const login = await call(url('/users/alice/login'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'alice-password-1' }) });
    apiSession = String((JSON.parse(login.text) as { session: string }).session);
    browser = new HttpBrowser(issuer.origin);
    const form = await browser.request('/login');
    await browser.submit(form, { username: 'alice', password: 'alice-password-1' });
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    const target = new URL(db.url);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    target.host = `127.0.0.1:${proxy.port}`;
    redisPort = await freePort();
    redis = await startRedisServer(redisPort);
    const port = await freePort();
    issuer = new URL(`http://127.0.0.1:${port}`);
    origin = issuer.origin;
    tessera = await startTestTessera({ PORT: String(port), ISSUER: issuer.origin, DATABASE_URL: target.href, REDIS_URL: `redis://127.0.0.1:${redisPort}`, TESSERA_METRICS_PORT: '0' });
    const alice = await tessera.core.accounts.createUser({ username: 'alice', password: 'alice-password-1', scopes: ['read'] }, by);
    for (const clientId of ['harvester', 'harvester-2', 'harvester-3']) {
      secrets[clientId] = (await tessera.core.clients.create({ clientId, name: clientId, kind: 'service', scopes: ['read'] }, by)).secret!;
    }
    secrets['records-api'] = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server', scopes: ['read'] }, by)).secret!;
    await tessera.core.clients.create({ clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['read'] }, by);
    await tessera.core.clients.create({ clientId: 'cli-2', name: 'CLI 2', kind: 'device', scopes: ['read'] }, by);
    pat = (await tessera.core.personalTokens.create(alice, { name: 'survey', scopes: ['read'] }, by)).token;
    patForPostgresOutage = (await tessera.core.personalTokens.create(alice, { name: 'survey 2', scopes: ['read'] }, by)).token;
    await signIn();
    opaqueToken = String((JSON.parse((await clientCredentials('harvester')).text) as { access_token: string }).access_token);
    cli = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(cli, { scope: 'read' });
    const consenting = new HttpBrowser(issuer.origin);
    const input = await consenting.request('/device');
    const confirm = await consenting.submit(input, { user_code: start.user_code });
    const consent = await consenting.submit(confirm, { confirm: 'yes' });
    expect(consent.html).toMatch(/Authorize/);
    consentUrl = consent.url;
    consentingBrowser = consenting;
  });
  afterAll(async () => {
    await tessera?.stop();
    await killRedisServer(redis);
    await proxy?.close();
    await db?.drop();
  });

  describe('with Redis down', () => {
    beforeAll(async () => {
      await killRedisServer(redis);
      redis = undefined;
    });
    afterAll(async () => {
      redis = await startRedisServer(redisPort);
      const deadline = Date.now() + 10_000;
      while ((await call(url('/readyz'))).status !== 200) {
        if (Date.now() > deadline) throw new Error('Tessera did not see Redis back');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });

    it('the token endpoint: 503 temporarily_unavailable, through Tessera and through oidc-provider', async () => {
      expectOAuthUnavailable(await clientCredentials('harvester'));
      expectOAuthUnavailable(
        await call(url('/oauth/token'), { method: 'POST', headers: { ...FORM, authorization: basic('harvester', secrets.harvester!) }, body: 'grant_type=client_credentials&scope=read&resource=urn%3Atessera%3Aapi' }),
      );
    });

    it('introspection: a token in Redis is 503; a personal token (PostgreSQL) is still answered', async () => {
      expectOAuthUnavailable(await introspect(opaqueToken));
      const answer = await introspect(pat);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.text)).toMatchObject({ active: true, sub: expect.any(String) });
    });

    it('revocation and device authorization: 503 temporarily_unavailable', async () => {
      expectOAuthUnavailable(await call(url('/oauth/revoke'), { method: 'POST', headers: { ...FORM, authorization: basic('harvester', secrets.harvester!) }, body: 'token=abc' }));
      expectOAuthUnavailable(await call(url('/oauth/device/code'), { method: 'POST', headers: FORM, body: 'client_id=cli&scope=read' }));
    });

    it('the device page and the consent page: a 503 page', async () => {
      expectPageUnavailable(await call(url('/device'), { headers: { accept: 'text/html' } }));
      const page = await consentingBrowser.request(consentUrl);
      expectPageUnavailable({ status: page.status, headers: page.headers, text: page.html });
    });

    it('the authorization endpoint sends the client temporarily_unavailable', async () => {
      await tessera.core.clients.create({ clientId: 'webapp', name: 'Web app', kind: 'web', scopes: ['read'], redirectUris: ['https://app.example.org/cb'] }, by).catch(() => undefined);
      const query = new URLSearchParams({ client_id: 'webapp', response_type: 'code', redirect_uri: 'https://app.example.org/cb', scope: 'read', state: 's1', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
      const answer = await call(url(`/oauth/authorize?${query}`));
      const location = new URL(answer.headers.get('location') ?? 'http://none/');
      expect({ status: answer.status, error: location.searchParams.get('error'), state: location.searchParams.get('state') }).toEqual({ status: 303, error: 'temporarily_unavailable', state: 's1' });
    });

    it('API login and API sessions: 503 in the API shape', async () => {
      expectApiUnavailable(await call(url('/users/alice/login'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'alice-password-1' }) }));
      expectApiUnavailable(await call(url('/api/v1/me'), { headers: { 'x-session': apiSession } }));
      expectApiUnavailable(await call(url('/api/v1/sessions'), { headers: { 'x-session': apiSession } }));
    });

    it('what needs only PostgreSQL keeps working: /api/v1/me and forward-auth with a personal token', async () => {
      const me = await call(url('/api/v1/me'), { headers: { authorization: `Bearer ${pat}` } });
      expect(me.status).toBe(200);
      expect(JSON.parse(me.text)).toMatchObject({ username: 'alice' });
      expect((await call(url('/auth/verify'), { headers: { authorization: `Bearer ${pat}` } })).status).toBe(200);
      expectApiUnavailable(await call(url('/auth/verify'), { headers: { 'x-session': apiSession } }));
    });

    it('the settings pages and the browser login: a 503 page', async () => {
      const tokens = await call(url('/settings/tokens'), { headers: { cookie: `tessera_session=${browser.cookie('tessera_session')}` } });
      expectPageUnavailable(tokens);
      const login = new HttpBrowser(issuer.origin);
      const form = await login.request('/login');
      expect(form.status).toBe(200);
      const answer = await login.submit(form, { username: 'alice', password: 'alice-password-1' });
      expectPageUnavailable({ status: answer.status, headers: answer.headers, text: answer.html });
    });

    it('logs the outage once with its stack, then counts, however many requests meet it', async () => {
      const before = tessera.logs.lines.length;
      for (let i = 0; i < 30; i++) {
        expect((await call(url('/api/v1/sessions'), { headers: { 'x-session': apiSession } })).status).toBe(503);
        expect((await clientCredentials('harvester')).status).toBe(503);
        expect((await call(url('/oauth/device/code'), { method: 'POST', headers: FORM, body: 'client_id=cli&scope=read' })).status).toBe(503);
      }
      const lines = tessera.logs.lines.slice(before);
      // Earlier tests met the outage already: at most one more whole line (after a quiet interval).
      expect(lines.filter((line) => line.includes('"stack"')).length).toBeLessThanOrEqual(1);
      // Error lines: the outage's summaries only; each request's access line is a warning.
      expect(lines.filter((line) => line.includes('"level":50')).length).toBeLessThanOrEqual(3);
      expect(lines.filter((line) => line.includes('"msg":"request answered unavailable"') && line.includes('"level":40')).length).toBeGreaterThanOrEqual(60);
    });

    it('the metrics count Redis commands that found it unavailable', async () => {
      const text = await (await fetch(`${tessera.metricsUrl!}/metrics`)).text();
      expect(sumOf(text, 'tessera_store_errors_total', { store: 'redis', kind: 'unavailable' })).toBeGreaterThanOrEqual(30);
      expect(sumOf(text, 'tessera_store_errors_total', { store: 'postgres' })).toBe(0);
    });

    it('health: /readyz 503 with Retry-After naming Redis, /healthz 200', async () => {
      const ready = await call(url('/readyz'));
      expect({ status: ready.status, retryAfter: ready.headers.get('retry-after') }).toEqual({ status: 503, retryAfter: RETRY_AFTER });
      expect(ready.text).toMatch(/Redis is unreachable/);
      expect((await call(url('/healthz'))).status).toBe(200);
    });
  });

  describe('when Redis loses its data without a disconnect (FLUSHALL of the private Redis)', () => {
    it('drops the cached answers within a heartbeat or two: the lost token and session are inactive', async () => {
      // The event: the store's report of lost data. The restart of Redis above lost its data too,
      // and is reported once, within a heartbeat of the reconnection: that report comes first.
      const reports = () => tessera.logs.lines.filter((line) => line.includes('Redis lost data')).length;
      const reported = async (count: number) => {
        const deadline = Date.now() + 10_000;
        while (reports() < count) {
          if (Date.now() > deadline) throw new Error(`report #${count} of lost data did not come within 10 s`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      };
      await reported(1);
      await signIn(); // (the restarted Redis has lost the sessions)
      const token = String((JSON.parse((await clientCredentials('harvester')).text) as { access_token: string }).access_token);
      const verify = () => call(url('/auth/verify'), { headers: { 'x-session': apiSession } });
      expect(JSON.parse((await introspect(token)).text)).toMatchObject({ active: true });
      expect((await verify()).status).toBe(200);
      // Both answers now come from memory.
      const { hits } = tessera.introspectionCache.stats();
      expect(JSON.parse((await introspect(token)).text)).toMatchObject({ active: true });
      expect((await verify()).status).toBe(200);
      expect(tessera.introspectionCache.stats().hits).toBe(hits + 2);

      const before = reports();
      const admin = new Redis(`redis://127.0.0.1:${redisPort}`, { lazyConnect: true });
      await admin.connect();
      try {
        await admin.flushall();
      } finally {
        admin.disconnect();
      }
      await reported(before + 1);
      expect(JSON.parse((await introspect(token)).text)).toEqual({ active: false });
      expect((await verify()).status).toBe(401);
    });
  });

  describe('with PostgreSQL down', () => {
    beforeAll(async () => {
      await signIn(); // (the restarted Redis has lost the sessions)
      await proxy.cut();
    });
    afterAll(async () => {
      await proxy.restore();
    });

    it('the token endpoint, revocation and device authorization for clients not in memory: 503 temporarily_unavailable', async () => {
      expectOAuthUnavailable(await clientCredentials('harvester-2'));
      expectOAuthUnavailable(await call(url('/oauth/revoke'), { method: 'POST', headers: { ...FORM, authorization: basic('harvester-3', secrets['harvester-3']!) }, body: 'token=abc' }));
      expectOAuthUnavailable(await call(url('/oauth/device/code'), { method: 'POST', headers: FORM, body: 'client_id=cli-2&scope=read' }));
    });

    it('introspection and forward-auth of a personal token not in memory: 503 in each shape', async () => {
      expectOAuthUnavailable(await introspect(patForPostgresOutage));
      expectApiUnavailable(await call(url('/auth/verify'), { headers: { authorization: `Bearer ${patForPostgresOutage}` } }));
    });

    it('API login and /api/v1/me: 503 in the API shape', async () => {
      expectApiUnavailable(await call(url('/users/alice/login'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'alice-password-1' }) }));
      expectApiUnavailable(await call(url('/api/v1/me'), { headers: { 'x-session': apiSession } }));
    });

    it('the settings pages: a 503 page', async () => {
      expectPageUnavailable(await call(url('/settings/tokens'), { headers: { cookie: `tessera_session=${browser.cookie('tessera_session')}` } }));
    });

    it('the metrics count PostgreSQL queries that found it unavailable', async () => {
      await call(url('/api/v1/me'), { headers: { authorization: `Bearer ${pat}` } });
      const text = await (await fetch(`${tessera.metricsUrl!}/metrics`)).text();
      expect(sumOf(text, 'tessera_store_errors_total', { store: 'postgres', kind: 'unavailable' })).toBeGreaterThanOrEqual(1);
    });

    it('health: /readyz 503 with Retry-After naming PostgreSQL', async () => {
      const ready = await call(url('/readyz'));
      expect({ status: ready.status, retryAfter: ready.headers.get('retry-after') }).toEqual({ status: 503, retryAfter: RETRY_AFTER });
      expect(ready.text).toMatch(/PostgreSQL is unreachable/);
    });
  });

  it('answered as /openapi.json says, every time (the answers checked above)', () => {
    expect([...documented.checked]).toEqual(expect.arrayContaining(['GET /api/v1/me 503', 'GET /api/v1/sessions 503', 'GET /auth/verify 503', 'GET /readyz 503', 'POST /users/{username}/login 503']));
  });
});
