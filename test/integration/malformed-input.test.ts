import { describe, expect, it } from '@jest/globals';
import { HttpBrowser } from '../support/http-browser.ts';
import { startServerProcess } from '../support/server-process.ts';
import { createTestDatabase, TEST_REDIS_URL, uniqueRedisPrefix, dropRedisPrefix } from '../support/services.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';

// Requests a fuzzer found answered 500: malformed percent-encoding in a path parameter or a cookie,
// and a body whose Content-Encoding does not match it. Each is the client's mistake: a 4xx in the
// documented JSON shape, and nothing that keeps a browser from signing in again.

const MALFORMED_COOKIE = 'tessera_session=%E0%A4%A';

describe('malformed requests are refused as the client error they are', () => {
  const suite = tesseraForSuite();

  it.each([
    ['POST', '/users/%ZZ/login', 'password=whatever'],
    ['GET', '/interaction/%ff', undefined],
    ['DELETE', '/api/v1/sessions/%ff', undefined],
  ])('%s %s (bad percent-encoding in the path) answers 400', async (method, path, body) => {
    const res = await fetch(`${suite.tessera.url}${path}`, { method, ...(body ? { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}) });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ message: 'The URL holds malformed percent-encoding.', status: 400 });
  });

  it('a body that does not match its Content-Encoding answers 400', async () => {
    const res = await fetch(`${suite.tessera.url}/logout`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: '{}' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ message: 'The request body could not be decoded.', status: 400 });
  });

  it('a malformed session cookie is no credential: 401, not 500', async () => {
    const res = await fetch(`${suite.tessera.url}/api/v1/me`, { headers: { cookie: MALFORMED_COOKIE } });
    expect(res.status).toBe(401);
  });

  it('a browser holding a malformed session cookie can still sign in', async () => {
    const form = await fetch(`${suite.tessera.url}/login`, { headers: { cookie: MALFORMED_COOKIE } });
    expect(form.status).toBe(200);
    const loginCsrf = form.headers.getSetCookie().map((c) => /^tessera_login_csrf=([^;]+)/.exec(c)?.[1]).find(Boolean);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())?.[1];
    expect(loginCsrf && csrf).toBeTruthy();
    const res = await fetch(`${suite.tessera.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tessera_login_csrf=${loginCsrf}; ${MALFORMED_COOKIE}` },
      body: new URLSearchParams({ username: 'admin', password: 'initial-admin-password', csrf: csrf!, next: '/settings/tokens' }).toString(),
    });
    expect(res.status).toBe(303);
    expect(res.headers.getSetCookie().some((c) => /^tessera_session=tsr_ses_/.test(c))).toBe(true);
  });

  // Found by the fuzz suite (fuzz.test.ts): each answered 500.

  it('POST /device without a session answers the form with its error (400), not 500', async () => {
    const res = await fetch(`${suite.tessera.url}/device`, { method: 'POST', headers: { accept: 'text/html' } });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('resuming a sign-in that does not exist, with a client named in the query, answers the error page (400), not 500', async () => {
    await suite.tessera.core.clients.create({ clientId: 'svc', name: 'Service', kind: 'service', scopes: ['read'] }, { actor: 'test' });
    const res = await fetch(`${suite.tessera.url}/oauth/authorize/unknown?client_id=svc`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it.each(['%C4%80', '%22', 'read%5Cx'])('GET /auth/verify?scope=%s with a working credential answers 400, not 500 nor a scope echoed into WWW-Authenticate', async (scope) => {
    const login = await fetch(`${suite.tessera.url}/users/admin/login?password=initial-admin-password`, { method: 'POST' });
    const { session } = (await login.json()) as { session: string };
    const res = await fetch(`${suite.tessera.url}/auth/verify?scope=${scope}`, { headers: { 'x-session': session } });
    expect([res.status, await res.json()]).toEqual([400, { message: 'The scope parameter holds a character no scope has.', status: 400 }]);
  });

  it('POST /login without a body answers the form again (403), not 500', async () => {
    const res = await fetch(`${suite.tessera.url}/login`, { method: 'POST' });
    expect(res.status).toBe(403);
  });

  it('POST to a live sign-in (/interaction/<uid>) without a body answers the form again (403), not 500', async () => {
    await suite.tessera.core.clients.create({ clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['read'] }, { actor: 'test' });
    const start = await fetch(`${suite.tessera.url}/oauth/device/code`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'client_id=cli&scope=read' });
    const { user_code: userCode } = (await start.json()) as { user_code: string };
    const browser = new HttpBrowser(suite.tessera.url);
    const confirm = await browser.submit(await browser.request('/device'), { user_code: userCode });
    const consent = await browser.submit(confirm, { confirm: 'yes' });
    expect(consent.url).toMatch(/\/interaction\//);
    const res = await browser.request(consent.url, { method: 'POST' });
    expect(res.status).toBe(403);
  });

  it.each(['/users/%00/login?password=x', '/users/bob%00/login?password=x'])('POST %s (a NUL in a name) answers 400, not 500', async (path) => {
    const res = await fetch(`${suite.tessera.url}${path}`, { method: 'POST' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ message: 'Text may not contain the NUL character (U+0000).', status: 400 });
  });

  it.each([
    ['GET', '/device', ':'],
    ['GET', '/.well-known/openid-configuration', ':'],
    ['GET', '/.well-known/oauth-authorization-server', 'a b'],
    ['POST', '/oauth/revoke', ':'],
    ['GET', '/.well-known/openid-configuration', 'proto:A:'],
    ['GET', '/.well-known/oauth-authorization-server', 'proto:,'],
    ['GET', '/device', ', example.org'],
    ['POST', '/oauth/token', ':'],
  ])('%s %s with an X-Forwarded-Host or -Proto that names no origin (%s) answers 400 invalid_request, not 500', async (method, path, host) => {
    const forwarded = host.startsWith('proto:') ? { 'x-forwarded-proto': host.slice('proto:'.length) } : { 'x-forwarded-host': host };
    const res = await fetch(`${suite.tessera.url}${path}`, { method, headers: forwarded });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: 'the Host header does not name a valid origin' });
  });

  it('nothing of the above was logged as an unhandled error', () => {
    expect(suite.tessera.logs.text).not.toMatch(/unhandled error/);
    expect(suite.tessera.logs.lines.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)).toEqual([]);
  });
});

describe('a method a route does not serve answers 405 with Allow, in the route\'s error shape', () => {
  const suite = tesseraForSuite();

  it.each([
    ['GET', '/oauth/token', 'POST'],
    ['PUT', '/oauth/token', 'POST'],
    ['GET', '/oauth/revoke', 'POST'],
    ['GET', '/oauth/device/code', 'POST'],
    ['DELETE', '/oauth/authorize', 'GET, HEAD'],
    ['PUT', '/device', 'GET, HEAD, POST'],
    ['POST', '/.well-known/jwks.json', 'GET, HEAD'],
    ['POST', '/.well-known/openid-configuration', 'GET, HEAD'],
    ['DELETE', '/.well-known/oauth-authorization-server', 'GET, HEAD'],
  ])('%s %s: 405 in the OAuth shape, Allow: %s', async (method, path, allow) => {
    const res = await fetch(`${suite.tessera.url}${path}`, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe(allow);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: `${method} is not allowed here; use ${allow}` });
  });

  it.each([
    ['PUT', '/login', 'GET, HEAD, POST'],
    ['DELETE', '/settings/tokens', 'GET, HEAD, POST'],
    ['PATCH', '/interaction/abc', 'GET, HEAD, POST'],
    ['POST', '/assets/copy.js', 'GET, HEAD'],
  ])('%s %s: 405 in the JSON error shape, Allow: %s', async (method, path, allow) => {
    const res = await fetch(`${suite.tessera.url}${path}`, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe(allow);
    expect(await res.json()).toEqual({ message: `${method} is not allowed here. Allowed: ${allow}.`, status: 405 });
  });

  it('a CORS preflight at an OAuth endpoint is still answered by oidc-provider', async () => {
    const res = await fetch(`${suite.tessera.url}/oauth/token`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-methods')).toBe('POST');
  });

  it('a path no route serves is still 404', async () => {
    for (const path of ['/oauth/logout', '/oauth/nothing', '/oauth/token/']) {
      const res = await fetch(`${suite.tessera.url}${path}`);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    }
  });
});

describe('the real process writes only JSON lines, whatever the provider is sent', () => {
  it('bodies oidc-provider cannot parse, and requests its own error handling let through', async () => {
    const db = await createTestDatabase();
    const prefix = uniqueRedisPrefix();
    const server = await startServerProcess({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_ADMIN_PASSWORD: 'initial-admin-password' });
    try {
      const sends: [string, string, Record<string, string>, string | undefined][] = [
        ['POST', '/oauth/revoke', { 'content-type': 'application/x-www-form-urlencoded; charset=nope' }, 'token=x'],
        ['POST', '/oauth/revoke', { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' }, 'token=x'],
        ['POST', '/oauth/device/code', { 'content-type': 'application/json' }, '{"client_id":'],
        ['POST', '/oauth/device/code', { 'content-type': 'application/x-www-form-urlencoded' }, `client_id=${'x'.repeat(60 * 1024)}`],
        ['POST', '/oauth/token', { 'content-type': 'application/x-www-form-urlencoded; charset=utf-16' }, 'grant_type=client_credentials'],
        ['POST', '/oauth/token', { 'content-type': 'text/plain' }, '\u0000\u00ff'],
        ['POST', '/device', { 'content-type': 'application/x-www-form-urlencoded' }, 'user_code=%ZZ&xsrf=%'],
        ['POST', '/device', {}, undefined],
        ['GET', '/device', { 'x-forwarded-host': ':' }, undefined],
      ];
      for (const [method, path, headers, body] of sends) {
        const res = await fetch(`${server.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
        expect(res.status).toBeLessThan(500);
        await res.arrayBuffer();
      }
    } finally {
      await server.stop();
      await db.drop();
      await dropRedisPrefix(prefix);
    }
    const lines = `${server.stdout()}\n${server.stderr()}`.split('\n').filter((line) => line.trim() !== '');
    const notJson = lines.filter((line) => {
      try {
        return typeof JSON.parse(line) !== 'object';
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
  }, 60_000);
});

describe('oidc-provider believes forwarding headers only from a trusted proxy, as express does', () => {
  // Proxies at 10.0.0.0/8 are trusted; the test connects from 127.0.0.1.
  const suite = tesseraForSuite({ TESSERA_TRUST_PROXY: '10.0.0.0/8' });

  it('an X-Forwarded-Host from any other peer does not reach the discovery document', async () => {
    const res = await fetch(`${suite.tessera.url}/.well-known/openid-configuration`, { headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' } });
    expect(res.status).toBe(200);
    const { token_endpoint: tokenEndpoint } = (await res.json()) as { token_endpoint: string };
    expect(new URL(tokenEndpoint).origin).toBe(suite.tessera.url);
  });
});
