import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { tokenFormat } from '../../src/credentials/token-format.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

const by = { actor: 'test' };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
/** Well-formed personal tokens (the checksum is right) that were never issued: each needs a database lookup. */
const guess = () => tokenFormat.generate('personal_access_token');

// Personal-token guessing at /oauth/introspect and /auth/verify: each guess is a PostgreSQL query,
// so the lookups that find nothing are limited per source, here 3 at once and 3 a minute.
describe('limits on guessing personal tokens', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let now = Date.UTC(2026, 10, 22, 12, 0, 0);
  const secrets: Record<string, string> = {};
  let pat: string;
  let session: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    tessera = await startTestTessera(
      { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_FAILED_LOOKUPS_PER_SOURCE: '3', TESSERA_FAILED_LOOKUP_WINDOW: '60' },
      {},
      { clock: () => now },
    );
    secrets.records = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    secrets.other = (await tessera.core.clients.create({ clientId: 'other-api', name: 'Other API', kind: 'resource_server' }, by)).secret!;
    await tessera.core.accounts.createUser({ username: 'erin', password: 'erin-password-1', scopes: ['read'] }, by);
    const erin = (await tessera.core.accounts.findUser('erin'))!;
    pat = (await tessera.core.personalTokens.create(erin, { name: 'guessing test', scopes: ['read'] }, by)).token;
    const login = await fetch(`${tessera.url}/users/erin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'erin-password-1' }) });
    session = String(((await login.json()) as { session: string }).session);
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  async function introspect(client: string, token: string) {
    const res = await fetch(`${tessera.url}/oauth/introspect`, { method: 'POST', headers: { ...FORM, authorization: basic(client, secrets[client === 'records-api' ? 'records' : 'other']!) }, body: new URLSearchParams({ token }) });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  }

  async function verify(address: string, token: string) {
    const res = await fetch(`${tessera.url}/auth/verify`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': address } });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  }

  const rateLimitHeaders = (headers: Headers) => Object.fromEntries(['retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'].map((name) => [name, headers.get(name)]));

  it('refuses an introspecting client whose personal-token lookups keep failing with 429, never with active:false', async () => {
    for (let i = 0; i < 3; i += 1) expect(await introspect('records-api', guess())).toMatchObject({ status: 200, body: { active: false } });

    const limited = await introspect('records-api', guess());
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({ error: 'rate_limited', error_description: expect.any(String) });
    expect(rateLimitHeaders(limited.headers)).toEqual({ 'retry-after': '20', 'ratelimit-limit': '3', 'ratelimit-remaining': '0', 'ratelimit-reset': '20' });
    expect(limited.headers.get('cache-control')).toBe('no-store');
    // A valid personal token from the limited caller is not called inactive: it is refused too.
    expect((await introspect('records-api', pat)).status).toBe(429);
    // Its other credentials are answered as ever, and other callers are not limited.
    expect(await introspect('records-api', session)).toMatchObject({ status: 200, body: { active: true, credential_kind: 'session' } });
    expect(await introspect('other-api', pat)).toMatchObject({ status: 200, body: { active: true, credential_kind: 'personal_access_token' } });

    // One failure's worth of time later, one more lookup may fail.
    now += 20_000;
    expect(await introspect('records-api', pat)).toMatchObject({ status: 200, body: { active: true } });
    expect((await introspect('records-api', guess())).status).toBe(200);
    expect((await introspect('records-api', guess())).status).toBe(429);
    now += 60_000;
  });

  it('does not count what memory answers: the same unknown token asked again', async () => {
    const token = guess();
    expect((await introspect('other-api', token)).body).toEqual({ active: false });
    // The inactive answer is kept 5 s: asked again within them, the stores are not asked.
    for (let i = 0; i < 5; i += 1) expect(await introspect('other-api', token)).toMatchObject({ status: 200, body: { active: false } });
    expect(await introspect('other-api', pat)).toMatchObject({ status: 200, body: { active: true } });
    now += 60_000;
  });

  it('limits /auth/verify per client address as the trusted gateway forwards it, in its own error shape', async () => {
    for (let i = 0; i < 3; i += 1) expect((await verify('198.51.100.7', guess())).status).toBe(401);
    const limited = await verify('198.51.100.7', guess());
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({ status: 429, message: expect.any(String) });
    expect(rateLimitHeaders(limited.headers)).toEqual({ 'retry-after': '20', 'ratelimit-limit': '3', 'ratelimit-remaining': '0', 'ratelimit-reset': '20' });
    // The valid token from that address: 429, not 401. Another address, and a session, pass.
    expect((await verify('198.51.100.7', pat)).status).toBe(429);
    expect((await verify('198.51.100.7', session)).status).toBe(200);
    expect((await verify('203.0.113.9', pat)).status).toBe(200);
    expect(tessera.logs.text).toContain('an address is limited at /auth/verify');
    expect(tessera.logs.text).not.toContain(pat);
  });
});
