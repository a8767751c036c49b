import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';
import { documentedFetch } from '../support/documented-answers.ts';

// Password login for API clients, on the real PostgreSQL and Redis, with an injected clock for
// expiry (never sleeps).
describe('API password login and session tokens', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  // Every answer below is held to /openapi.json (test/support/documented-answers.ts).
  const fetch = documentedFetch(() => tessera.url);
  let now = Date.parse('2026-11-22T12:00:00Z');
  const by = { actor: 'test' };

  beforeAll(async () => {
    db = await createTestDatabase();
    tessera = await startTestTessera(
      { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_SESSION_HEADER_ALIASES: 'X-ArchivesSpace-Session' },
      { loginLimits: { failuresPerUsername: 3, usernameWindowSeconds: 900, lockoutSeconds: 60, maxLockoutSeconds: 3600, failuresPerIp: 20, ipWindowSeconds: 3600 } },
      { clock: () => now },
    );
    await tessera.core.accounts.createUser({ username: 'archivist', email: 'archivist@example.org', password: 'archivist-password', scopes: ['read', 'deposit:write'] }, by);
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  const url = (path: string) => `${tessera.url}${path}`;
  /** Each test logs in from an address of its own (X-Forwarded-For from loopback is trusted). */
  let address = 0;
  const from = () => ({ 'x-forwarded-for': `198.51.100.${++address}` });

  async function login(body: { json?: object; form?: Record<string, string>; multipart?: Record<string, string>; query?: string }, username = 'archivist', headers: Record<string, string> = from()) {
    let init: RequestInit = { method: 'POST', headers };
    if (body.json) init = { ...init, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body.json) };
    if (body.form) init = { ...init, headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body.form) };
    if (body.multipart) {
      const form = new FormData();
      for (const [k, v] of Object.entries(body.multipart)) form.append(k, v);
      init = { ...init, body: form };
    }
    const res = await fetch(url(`/users/${encodeURIComponent(username)}/login${body.query ?? ''}`), init);
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
  }

  it('logs in with the password as a form field, a JSON field, a multipart field or a query parameter', async () => {
    for (const body of [{ form: { password: 'archivist-password' } }, { json: { password: 'archivist-password' } }, { multipart: { password: 'archivist-password' } }, { query: '?password=archivist-password' }]) {
      const res = await login(body);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        session: expect.stringMatching(/^tsr_ses_[0-9A-Za-z]{38}$/),
        user: { username: 'archivist', email: 'archivist@example.org', scopes: ['read', 'deposit:write'] },
        expires_in: 3600,
        expires_at: new Date(now + 3600 * 1000).toISOString(),
        expiring: true,
      });
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('gives the same 401 for an unknown user, a wrong password and a disabled account', async () => {
    await tessera.core.accounts.createUser({ username: 'dormant', password: 'dormant-password' }, by);
    await tessera.core.accounts.setDisabled('dormant', true, by);
    const unknown = await login({ form: { password: 'archivist-password' } }, 'nobody');
    const wrong = await login({ form: { password: 'not-the-password' } });
    const disabled = await login({ form: { password: 'dormant-password' } }, 'dormant');
    for (const res of [unknown, wrong, disabled]) {
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ message: 'Login failed: wrong username or password. An account that signs in through an identity provider has no password here: use a personal access token (Settings, Access tokens).', status: 401 });
    }
    const missing = await login({ form: {} });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ errors: [{ field: 'password', code: 'required' }] });
  });

  it('authenticates API calls through X-Session, Authorization: Bearer and an alias header', async () => {
    const { body } = await login({ json: { password: 'archivist-password' } });
    const token = String(body.session);
    for (const headers of [{ 'x-session': token }, { authorization: `Bearer ${token}` }, { authorization: `bearer ${token}` }, { 'X-ArchivesSpace-Session': token }]) {
      const res = await fetch(url('/api/v1/sessions'), { headers });
      expect(res.status).toBe(200);
    }
    const none = await fetch(url('/api/v1/sessions'));
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer realm="tessera"/);
    const forged = await fetch(url('/api/v1/sessions'), { headers: { 'x-session': `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}` } });
    expect(forged.status).toBe(401);
    expect(await forged.json()).toEqual({ message: 'The session token is invalid or has expired.', status: 401 });
  });

  it('grants a subset of scopes when asked, and refuses scopes the account lacks', async () => {
    const narrow = await login({ json: { password: 'archivist-password', scope: 'read' } });
    expect(narrow.body.user).toMatchObject({ scopes: ['read'] });
    const wide = await login({ json: { password: 'archivist-password', scope: 'read deposit:actions' } });
    expect(wide.status).toBe(400);
    expect(wide.body).toMatchObject({ errors: [{ field: 'scope', code: 'not_allowed' }] });
  });

  it('slides with use, ends after an idle hour, and never outlives 24 hours', async () => {
    const list = (token: string) => fetch(url('/api/v1/sessions'), { headers: { 'x-session': token } }).then((r) => r.status);
    const idle = String((await login({ json: { password: 'archivist-password' } })).body.session);
    const busy = String((await login({ json: { password: 'archivist-password' } })).body.session);
    for (let i = 0; i < 2; i++) {
      now += 50 * 60 * 1000;
      expect(await list(busy)).toBe(200);
    }
    expect(await list(idle)).toBe(401); // 100 minutes idle
    for (let elapsed = 100; elapsed < 24 * 60 - 50; elapsed += 50) {
      now += 50 * 60 * 1000;
      expect(await list(busy)).toBe(200);
    }
    now += 50 * 60 * 1000; // past 24 hours since login, though used 50 minutes ago
    expect(await list(busy)).toBe(401);
  });

  it('honours ArchivesSpace\'s expiring=false: no idle timeout, ends at sessions.nonExpiringMaxSeconds (7 days), and says so', async () => {
    const list = (token: string) => fetch(url('/api/v1/sessions'), { headers: { 'x-session': token } });
    const week = 7 * 86400;
    const asked: Parameters<typeof login>[0][] = [{ query: '?expiring=false', form: { password: 'archivist-password' } }, { form: { password: 'archivist-password', expiring: 'false' } }, { json: { password: 'archivist-password', expiring: false } }];
    const tokens: string[] = [];
    for (const body of asked) {
      const res = await login(body);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ expires_in: week, expires_at: new Date(now + week * 1000).toISOString(), expiring: false });
      tokens.push(String(res.body.session));
    }
    const ordinary = await login({ query: '?expiring=true', form: { password: 'archivist-password' } });
    expect(ordinary.body).toMatchObject({ expires_in: 3600, expiring: true });
    const listed = (await (await list(tokens[0]!)).json()) as { sessions: { current: boolean; expiring: boolean; expires_at: string }[] };
    expect(listed.sessions.find((s) => s.current)).toMatchObject({ expiring: false, expires_at: new Date(now + week * 1000).toISOString() });

    // Unused for two days (far past the idle hour and the 24-hour limit of an ordinary session): still live.
    now += 2 * 86400 * 1000;
    expect((await list(String(ordinary.body.session))).status).toBe(401);
    expect((await list(tokens[1]!)).status).toBe(200);
    now += (week - 2 * 86400 - 60) * 1000; // a minute before the week is up
    expect((await list(tokens[2]!)).status).toBe(200);
    now += 60 * 1000;
    for (const token of tokens) expect((await list(token)).status).toBe(401);

    const odd = await login({ query: '?expiring=maybe', form: { password: 'archivist-password' } });
    expect(odd.status).toBe(400);
    expect(odd.body).toMatchObject({ errors: [{ field: 'expiring', code: 'invalid_type' }] });
  });

  it('lists live sessions, ends one by id, and logs out', async () => {
    const first = String((await login({ json: { password: 'archivist-password' } }, 'archivist', { ...from(), 'user-agent': 'first-agent' })).body.session);
    const second = String((await login({ json: { password: 'archivist-password' } }, 'archivist', { ...from(), 'user-agent': 'second-agent' })).body.session);
    const listed = (await (await fetch(url('/api/v1/sessions'), { headers: { 'x-session': second } })).json()) as { sessions: { id: string; user_agent: string; current: boolean; ip: string }[] };
    const mine = listed.sessions.find((s) => s.current)!;
    const other = listed.sessions.find((s) => s.user_agent === 'first-agent')!;
    expect(mine.user_agent).toBe('second-agent');
    expect(other.ip).toMatch(/^198\.51\.100\./);
    expect(JSON.stringify(listed)).not.toContain(first);

    expect((await fetch(url(`/api/v1/sessions/${other.id}`), { method: 'DELETE', headers: { 'x-session': second } })).status).toBe(204);
    expect((await fetch(url('/api/v1/sessions'), { headers: { 'x-session': first } })).status).toBe(401);
    expect((await fetch(url('/api/v1/sessions/not-a-session'), { method: 'DELETE', headers: { 'x-session': second } })).status).toBe(404);

    expect((await fetch(url('/logout'), { method: 'POST', headers: { 'x-session': second } })).status).toBe(204);
    expect((await fetch(url('/api/v1/sessions'), { headers: { 'x-session': second } })).status).toBe(401);
  });

  it('ends every session when the password changes', async () => {
    await tessera.core.accounts.createUser({ username: 'rotator', password: 'rotator-password' }, by);
    const tokens = await Promise.all([1, 2, 3].map(async () => String((await login({ json: { password: 'rotator-password' } }, 'rotator')).body.session)));
    await tessera.core.accounts.changePassword('rotator', 'rotator-password-2', by);
    for (const token of tokens) expect((await fetch(url('/api/v1/sessions'), { headers: { 'x-session': token } })).status).toBe(401);
    expect((await login({ json: { password: 'rotator-password-2' } }, 'rotator')).status).toBe(200);
  });

  it('locks an address out of an account after repeated failures, with Retry-After', async () => {
    await tessera.core.accounts.createUser({ username: 'target', password: 'target-password' }, by);
    const attacker = from();
    for (let i = 0; i < 3; i++) expect((await login({ json: { password: 'guess' } }, 'target', attacker)).status).toBe(401);
    const locked = await login({ json: { password: 'target-password' } }, 'target', attacker);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(locked.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(locked.body).toEqual({ message: 'Too many requests. Try again later.', status: 429 });
    // Only that address: the owner elsewhere still signs in (docs/design/sign-in-throttling.md).
    expect((await login({ json: { password: 'target-password' } }, 'target')).status).toBe(200);
    // An unknown username is locked the same way, so the limit reveals nothing.
    for (let i = 0; i < 3; i++) await login({ json: { password: 'guess' } }, 'no-such-user', attacker);
    expect((await login({ json: { password: 'guess' } }, 'no-such-user', attacker)).status).toBe(429);
  });

  it('limits failures per address across usernames', async () => {
    const headers = from();
    const statuses: number[] = [];
    for (let i = 0; i < 22; i++) statuses.push((await login({ json: { password: 'guess' } }, `spray-${i}`, headers)).status);
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(20)).toEqual([429, 429]);
  });

  it('answers a resource server introspecting a session token, and forgets it after logout', async () => {
    const { secret } = await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server', scopes: ['read'] }, by);
    const introspect = async (token: string) => {
      const res = await fetch(url('/oauth/introspect'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`records-api:${secret}`).toString('base64')}` },
        body: new URLSearchParams({ token }),
      });
      return (await res.json()) as Record<string, unknown>;
    };
    const token = String((await login({ json: { password: 'archivist-password', scope: 'read' } })).body.session);
    const user = await tessera.core.accounts.findUser('archivist');
    expect(await introspect(token)).toEqual({
      active: true,
      token_type: 'Bearer',
      credential_kind: 'session',
      scope: 'read',
      sub: user!.id,
      username: 'archivist',
      iat: Math.floor(now / 1000),
      exp: Math.floor(now / 1000) + 3600,
      iss: tessera.config.issuer,
    });
    await fetch(url('/logout'), { method: 'POST', headers: { 'x-session': token } });
    expect(await introspect(token)).toEqual({ active: false });
  });

  it('answered as /openapi.json says, every time (the answers checked above)', () => {
    expect([...fetch.checked]).toEqual(expect.arrayContaining(['POST /users/{username}/login 200', 'POST /users/{username}/login 400', 'POST /users/{username}/login 401', 'GET /api/v1/sessions 200', 'GET /api/v1/sessions 401', 'DELETE /api/v1/sessions/{id} 204', 'POST /logout 204']));
  });
});

describe('the general rate limit of the JSON API', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  const fetch = documentedFetch(() => tessera.url);

  beforeAll(async () => {
    db = await createTestDatabase();
    tessera = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_API_REQUESTS_PER_IP_PER_MINUTE: '5' });
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it('answers 429 with Retry-After past the limit, per address', async () => {
    const call = (ip: string) => fetch(`${tessera.url}/api/v1/sessions`, { headers: { 'x-forwarded-for': ip } });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call('203.0.113.50')).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    const limited = await call('203.0.113.50');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await limited.json()).toEqual({ message: 'Too many requests. Try again later.', status: 429 });
    expect((await call('203.0.113.51')).status).toBe(401);
    // Health checks are not part of the API and are never limited.
    for (let i = 0; i < 10; i++) expect((await fetch(`${tessera.url}/healthz`, { headers: { 'x-forwarded-for': '203.0.113.50' } })).status).toBe(200);
  });
});

describe('expiring=false when sessions.nonExpiringMaxSeconds is 0', () => {
  const suite = tesseraForSuite({ TESSERA_SESSION_NON_EXPIRING_MAX: '0' });

  it('refuses it with a 400 naming the field, and still logs in without it', async () => {
    await suite.tessera.core.accounts.createUser({ username: 'archivist', password: 'archivist-password', scopes: ['read'] }, { actor: 'test' });
    const ask = (query: string) =>
      fetch(`${suite.tessera.url}/users/archivist/login${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'archivist-password' }) });
    const refused = await ask('?expiring=false');
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ errors: [{ field: 'expiring', code: 'not_allowed' }] });
    const ordinary = await ask('');
    expect(ordinary.status).toBe(200);
    expect(await ordinary.json()).toMatchObject({ expires_in: 3600, expiring: true });
  });
});
