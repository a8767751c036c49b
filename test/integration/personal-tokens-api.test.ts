import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { documentedFetch } from '../support/documented-answers.ts';

// The JSON API for personal access tokens and every way a token is presented, on the real
// PostgreSQL and Redis. (The browser side is in settings-browser.test.ts.)
describe('personal access tokens: JSON API and use', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let session: string;
  const by = { actor: 'test' };
  // Every answer below is held to /openapi.json (test/support/documented-answers.ts).
  const fetch = documentedFetch(() => tessera.url);

  beforeAll(async () => {
    db = await createTestDatabase();
    tessera = await startTestTessera({
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      TESSERA_REDIS_PREFIX: prefix,
      TESSERA_API_USER_HEADER: 'X-Pharos-API-User',
      TESSERA_API_KEY_HEADER: 'X-Pharos-API-Key',
    });
    await tessera.core.accounts.createUser({ username: 'depositor', email: 'dep@example.org', password: 'depositor-password', scopes: ['read', 'deposit:write'] }, by);
    const login = await fetch(`${tessera.url}/users/depositor/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'depositor-password' }) });
    session = String(((await login.json()) as { session: string }).session);
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  const api = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
    fetch(`${tessera.url}${path}`, { ...init, headers: { 'x-session': session, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers } });
  const create = async (body: object) => {
    const res = await api('/api/v1/tokens', { method: 'POST', body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const me = (headers: Record<string, string>, query = '') => fetch(`${tessera.url}/api/v1/me${query}`, { headers });

  it('creates a token whose value is answered once, then lists it without the value', async () => {
    const created = await create({ name: 'CI upload', scopes: ['read', 'deposit:write'], expires_in_days: 30 });
    expect(created.status).toBe(201);
    const token = String(created.body.token);
    expect(token).toMatch(/^tsr_pat_[0-9A-Za-z]{38}$/);
    expect(created.body).toMatchObject({ name: 'CI upload', scopes: ['read', 'deposit:write'], hint: token.slice(0, 12), revoked: false });
    const listed = await (await api('/api/v1/tokens')).text();
    expect(listed).toContain('CI upload');
    expect(listed).not.toContain(token);
    expect((await me({ authorization: `Bearer ${token}` })).status).toBe(200);
  });

  it('defaults to read and refuses scopes the user lacks, names that are empty and lifetimes that are too long', async () => {
    expect((await create({ name: 'default' })).body).toMatchObject({ scopes: ['read'] });
    const refused = await create({ name: 'too much', scopes: ['deposit:actions'] });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toMatch(/deposit:actions/);
    expect((await create({ name: '' })).status).toBe(400);
    expect((await create({ name: 'forever', expires_in_days: null })).status).toBe(400);
    expect((await create({ name: 'ten years', expires_in_days: 3650 })).status).toBe(400);
  });

  it('names a refused field as the client sent it', async () => {
    const tooLong = await create({ name: 'ten years', expires_in_days: 3650 });
    expect(tooLong.status).toBe(400);
    expect((tooLong.body.errors as { field: string }[]).map((e) => e.field)).toEqual(['expires_in_days']);
    const forever = await create({ name: 'forever', expires_in_days: null });
    expect((forever.body.errors as { field: string }[]).map((e) => e.field)).toEqual(['expires_in_days']);
  });

  it('accepts a token as Bearer, ?access_token and the configured API-key header pair', async () => {
    const token = String((await create({ name: 'uses', scopes: ['read'] })).body.token);
    for (const [headers, query] of [
      [{ authorization: `Bearer ${token}` }, ''],
      [{ authorization: `BEARER ${token}` }, ''],
      [{}, `?access_token=${token}`],
      [{ 'X-Pharos-API-User': 'depositor', 'X-Pharos-API-Key': token }, ''],
      [{ 'X-Pharos-API-User': 'DEP@example.org', 'X-Pharos-API-Key': token }, ''],
    ] as const) {
      const res = await me({ ...headers }, query);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ sub: expect.any(String), username: 'depositor', email: 'dep@example.org', scopes: ['read'], credential: 'personal_access_token' });
    }
    // The user header must name the token's owner.
    expect((await me({ 'X-Pharos-API-User': 'someone-else', 'X-Pharos-API-Key': token })).status).toBe(401);
    // A mistyped token is refused.
    expect((await me({ authorization: `Bearer ${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}` })).status).toBe(401);
  });

  it('never lets a personal access token list, create, rotate or revoke tokens', async () => {
    const token = String((await create({ name: 'limited' })).body.token);
    const id = String((await create({ name: 'victim' })).body.id);
    for (const [method, path] of [
      ['GET', '/api/v1/tokens'],
      ['POST', '/api/v1/tokens'],
      ['POST', `/api/v1/tokens/${id}/rotate`],
      ['DELETE', `/api/v1/tokens/${id}`],
    ] as const) {
      const res = await fetch(`${tessera.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: method === 'POST' && path.endsWith('tokens') ? JSON.stringify({ name: 'x' }) : undefined });
      expect({ method, path, status: res.status }).toEqual({ method, path, status: 403 });
    }
  });

  it('rotates a token: the old value stops, the new one works with the same name and scopes', async () => {
    const created = await create({ name: 'rotating', scopes: ['read', 'deposit:write'], expires_in_days: 7 });
    const rotated = await api(`/api/v1/tokens/${created.body.id}/rotate`, { method: 'POST' });
    expect(rotated.status).toBe(201);
    const body = (await rotated.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ name: 'rotating', scopes: ['read', 'deposit:write'] });
    expect((await me({ authorization: `Bearer ${created.body.token}` })).status).toBe(401);
    expect((await me({ authorization: `Bearer ${body.token}` })).status).toBe(200);
  });

  it('revokes a token (204), after which it is refused; another user cannot revoke it', async () => {
    const created = await create({ name: 'short-lived' });
    await tessera.core.accounts.createUser({ username: 'other', password: 'other-password' }, by);
    const otherLogin = await fetch(`${tessera.url}/users/other/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'other-password' }) });
    const otherSession = String(((await otherLogin.json()) as { session: string }).session);
    expect((await api(`/api/v1/tokens/${created.body.id}`, { method: 'DELETE', headers: { 'x-session': otherSession } })).status).toBe(404);
    expect((await api(`/api/v1/tokens/${created.body.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await me({ authorization: `Bearer ${created.body.token}` })).status).toBe(401);
    expect((await api(`/api/v1/tokens/${created.body.id}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('makes every token of a disabled user inactive at once, and lets resource servers introspect tokens', async () => {
    await tessera.core.accounts.createUser({ username: 'leaver', password: 'leaver-password', scopes: ['read'] }, by);
    const login = await fetch(`${tessera.url}/users/leaver/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'leaver-password' }) });
    const leaverSession = String(((await login.json()) as { session: string }).session);
    const res = await api('/api/v1/tokens', { method: 'POST', body: JSON.stringify({ name: 'leaver token' }), headers: { 'x-session': leaverSession } });
    const token = String(((await res.json()) as { token: string }).token);

    const { secret } = await tessera.core.clients.create({ clientId: 'deposit-api', name: 'Deposit API', kind: 'resource_server', scopes: ['read'] }, by);
    const introspect = async (value: string) =>
      (await (
        await fetch(`${tessera.url}/oauth/introspect`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`deposit-api:${secret}`).toString('base64')}` },
          body: new URLSearchParams({ token: value }),
        })
      ).json()) as Record<string, unknown>;
    expect(await introspect(token)).toMatchObject({ active: true, credential_kind: 'personal_access_token', scope: 'read', username: 'leaver' });

    await tessera.core.accounts.setDisabled('leaver', true, by);
    expect((await me({ authorization: `Bearer ${token}` })).status).toBe(401);
    expect(await introspect(token)).toEqual({ active: false });
  });

  it('requires the CSRF token for changes made with the browser cookie', async () => {
    const res = await fetch(`${tessera.url}/api/v1/tokens`, { method: 'POST', headers: { cookie: `tessera_session=${session}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'csrf' }) });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ status: 403, message: expect.stringMatching(/form has expired|did not come from Tessera/) });
    // Reading with the cookie needs no CSRF token.
    expect((await fetch(`${tessera.url}/api/v1/tokens`, { headers: { cookie: `tessera_session=${session}` } })).status).toBe(200);
  });

  it('signs a browser in with an HttpOnly SameSite=Lax cookie, renewing the session, and refuses a forged login form', async () => {
    const form = await fetch(`${tessera.url}/login?next=/settings/security`);
    const csrfCookie = form.headers.getSetCookie().find((c) => c.startsWith('tessera_login_csrf='))!;
    const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())![1]!;
    const post = (cookie: string, token: string) =>
      fetch(`${tessera.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams({ csrf: token, next: '/settings/security', username: 'depositor', password: 'depositor-password' }),
      });
    // No matching cookie: a cross-site form cannot log a victim in.
    expect((await post('', csrf)).status).toBe(403);
    const planted = session; // an existing session presented at login is ended, not kept
    const ok = await post(`${csrfCookie.split(';')[0]}; tessera_session=${planted}`, csrf);
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/settings/security');
    const cookie = ok.headers.getSetCookie().find((c) => c.startsWith('tessera_session='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).not.toMatch(/Secure/i); // the test issuer is http; an https issuer adds Secure
    const value = /^tessera_session=([^;]+)/.exec(cookie)![1]!;
    expect(value).not.toBe(planted);
    expect((await me({ cookie: `tessera_session=${value}` })).status).toBe(200);
    expect((await me({ 'x-session': planted })).status).toBe(401);
    // An open redirect is not possible through `next`.
    const evil = await fetch(`${tessera.url}/login?next=//evil.example/`);
    expect(await evil.text()).toMatch(/name="next" value="\/settings\/tokens"/);
  });

  it('answered as /openapi.json says, every time (the answers checked above)', () => {
    expect([...fetch.checked]).toEqual(expect.arrayContaining(['POST /users/{username}/login 200', 'GET /api/v1/tokens 200', 'POST /api/v1/tokens 201', 'POST /api/v1/tokens 400', 'POST /api/v1/tokens/{id}/rotate 201', 'DELETE /api/v1/tokens/{id} 204', 'GET /api/v1/me 200', 'GET /api/v1/me 401']));
  });
});
