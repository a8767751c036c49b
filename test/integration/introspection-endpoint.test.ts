import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createOidcAdapterFactory } from '../../src/oauth/adapter/oidc-adapter.ts';
import { freePort, killRedisServer, startRedisServer } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

const by = { actor: 'test' };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function post(base: string, body: string | URLSearchParams, headers: Record<string, string> = {}, method = 'POST') {
  const res = await fetch(`${base}/oauth/introspect`, { method, headers: { ...FORM, ...headers }, ...(method === 'GET' ? {} : { body }) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

describe('the introspection endpoint (RFC 7662)', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let base: string;
  let rsSecret: string;
  let serviceSecret: string;
  let pat: string;
  let session: string;
  let now = Date.UTC(2026, 10, 22, 12, 0, 0);

  beforeAll(async () => {
    db = await createTestDatabase();
    tessera = await startTestTessera(
      { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_SESSION_IDLE_TIMEOUT: '120', TESSERA_INTROSPECTION_CACHE_TTL: '100' },
      {},
      { clock: () => now },
    );
    base = tessera.url;
    rsSecret = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    asRecordsApi = { authorization: basic('records-api', rsSecret) };
    serviceSecret = (await tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
    await tessera.core.clients.create({ clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['read'] }, by);
    await tessera.core.accounts.createUser({ username: 'carol', email: 'carol@example.org', password: 'carol-password', scopes: ['read', 'deposit:write'] }, by);
    const carol = (await tessera.core.accounts.findUser('carol'))!;
    pat = (await tessera.core.personalTokens.create(carol, { name: 'endpoint test', scopes: ['read', 'deposit:write'], expiresInDays: 30 }, by)).token;
    const login = await fetch(`${base}/users/carol/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'carol-password' }) });
    session = String(((await login.json()) as { session: string }).session);
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  let asRecordsApi: Record<string, string>;

  it('answers an active personal token with exactly the RFC 7662 members, and no-store', async () => {
    const answer = await post(base, new URLSearchParams({ token: pat }), asRecordsApi);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const carol = (await tessera.core.accounts.findUser('carol'))!;
    expect(answer.body).toEqual({
      active: true,
      scope: 'read deposit:write',
      username: 'carol',
      email: 'carol@example.org',
      sub: carol.id,
      token_type: 'Bearer',
      credential_kind: 'personal_access_token',
      exp: Math.floor(now / 1000) + 30 * 86400,
      iat: Math.floor(now / 1000),
      iss: tessera.config.issuer,
    });
  });

  it('answers a streamed body over the limit with 413, not a dropped connection, on every endpoint that reads a form first', async () => {
    const { request } = await import('node:http');
    for (const path of ['/oauth/introspect', '/oauth/token', '/oauth/device/code']) {
      const status = await new Promise<number>((resolve, reject) => {
        // No Content-Length: the limit can only be noticed while reading.
        const req = request(`${base}${path}`, { method: 'POST', headers: { ...FORM, ...asRecordsApi, 'transfer-encoding': 'chunked' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        for (let i = 0; i < 10; i += 1) req.write(`token=${'x'.repeat(8 * 1024)}&`);
        req.end();
      });
      expect({ path, status }).toEqual({ path, status: 413 });
    }
  });

  it('is the introspection_endpoint of the discovery document, for authenticated clients only', async () => {
    const discovery = (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.introspection_endpoint).toBe(`${base}/oauth/introspect`);
    expect(discovery.introspection_endpoint_auth_methods_supported).toEqual(['client_secret_basic', 'client_secret_post', 'private_key_jwt']);
    // RFC 8414 §2: with private_key_jwt advertised, its signing algorithms are REQUIRED.
    expect(discovery.introspection_endpoint_auth_signing_alg_values_supported).toEqual(discovery.token_endpoint_auth_signing_alg_values_supported);
    expect(discovery.introspection_endpoint_auth_signing_alg_values_supported).toContain('ES256');
    // Revocation authenticates clients as the token endpoint does, and says so.
    expect(discovery.revocation_endpoint_auth_methods_supported).toEqual(discovery.token_endpoint_auth_methods_supported);
    expect(discovery.revocation_endpoint_auth_signing_alg_values_supported).toEqual(discovery.token_endpoint_auth_signing_alg_values_supported);
    // The credential header names, here the defaults (verifier-package.test.ts: configured ones).
    expect(discovery).toMatchObject({ tessera_session_header_aliases: [], tessera_api_key_header: 'x-api-key', tessera_api_user_header: 'x-api-user' });
  });

  it('answers token_type as the OAuth token type (Bearer) and the kind of credential in credential_kind', async () => {
    const service = await fetch(`${base}/oauth/token`, { method: 'POST', headers: { ...FORM, authorization: basic('harvester', serviceSecret) }, body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'read' }) });
    const accessToken = String(((await service.json()) as { access_token: string }).access_token);
    for (const [token, kind] of [[pat, 'personal_access_token'], [session, 'session'], [accessToken, 'access_token']] as const) {
      const answer = await post(base, new URLSearchParams({ token }), asRecordsApi);
      expect(answer.body).toMatchObject({ active: true, token_type: 'Bearer', credential_kind: kind });
    }
  });

  it('treats token_type_hint as a hint only', async () => {
    for (const hint of ['refresh_token', 'access_token', 'nonsense']) {
      const answer = await post(base, new URLSearchParams({ token: session, token_type_hint: hint }), asRecordsApi);
      expect(answer.body).toMatchObject({ active: true, credential_kind: 'session', username: 'carol' });
    }
  });

  it('answers anything not active with exactly {"active": false}', async () => {
    for (const token of ['garbage', `${pat.slice(0, -1)}${pat.endsWith('A') ? 'B' : 'A'}`, 'a.b.c', 'tsr_ses_x', 'x'.repeat(5000)]) {
      const answer = await post(base, new URLSearchParams({ token }), asRecordsApi);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('cache-control')).toBe('no-store');
      expect(answer.body).toEqual({ active: false });
    }
  });

  it('accepts client_secret_post as well as client_secret_basic', async () => {
    const answer = await post(base, new URLSearchParams({ token: pat, client_id: 'records-api', client_secret: rsSecret }));
    expect(answer.body).toMatchObject({ active: true });
  });

  it('refuses callers that are not an authenticated resource server with 401 invalid_client', async () => {
    const token = new URLSearchParams({ token: pat });
    const cases: { headers?: Record<string, string>; body?: URLSearchParams; challenge: boolean }[] = [
      { challenge: true }, // no authentication at all
      { headers: { authorization: basic('records-api', `${rsSecret}x`) }, challenge: true },
      { headers: { authorization: basic('no-such-client', rsSecret) }, challenge: true },
      { body: new URLSearchParams({ token: pat, client_id: 'records-api', client_secret: 'wrong' }), challenge: false },
      { body: new URLSearchParams({ token: pat, client_id: 'cli' }), challenge: true }, // a public client has nothing to prove
      { headers: { authorization: basic('harvester', serviceSecret) }, challenge: true }, // authenticated, but not a resource server
      { headers: { authorization: `Bearer ${pat}` }, challenge: false },
    ];
    for (const { headers = {}, body = token, challenge } of cases) {
      const answer = await post(base, body, headers);
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual({ error: 'invalid_client', error_description: expect.any(String) });
      expect(answer.headers.get('www-authenticate')).toBe(challenge ? 'Basic realm="tessera"' : null);
      expect(answer.headers.get('cache-control')).toBe('no-store');
    }
    const notAllowed = await post(base, token, { authorization: basic('harvester', serviceSecret) });
    expect(notAllowed.body.error_description).toMatch(/only resource servers and service clients granted introspection/);
  });

  it('lets a service client granted introspection get client-credentials tokens and introspect, by Basic and client_secret_post; without the grant it stays refused', async () => {
    const granted = await tessera.core.clients.create({ clientId: 'deposit-worker', name: 'Deposit worker', kind: 'service', scopes: ['read'], mayIntrospect: true }, by);
    expect(granted.client.mayIntrospect).toBe(true);
    const asWorker = { authorization: basic('deposit-worker', granted.secret!) };
    const issued = await fetch(`${base}/oauth/token`, { method: 'POST', headers: { ...FORM, ...asWorker }, body: 'grant_type=client_credentials' });
    expect(issued.status).toBe(200);
    const ownToken = String(((await issued.json()) as { access_token: string }).access_token);
    // It checks a caller's token and its own, by HTTP Basic (twice: the checked-Basic memory) and client_secret_post.
    for (let i = 0; i < 2; i += 1) expect((await post(base, new URLSearchParams({ token: pat }), asWorker)).body).toMatchObject({ active: true, username: 'carol' });
    expect((await post(base, new URLSearchParams({ token: ownToken, client_id: 'deposit-worker', client_secret: granted.secret! }))).body).toMatchObject({ active: true, sub: 'deposit-worker' });
    // The grant is explicit: a service client without it is refused as before, and other kinds cannot have it.
    const plain = await post(base, new URLSearchParams({ token: ownToken }), { authorization: basic('harvester', serviceSecret) });
    expect(plain.status).toBe(401);
    expect(plain.body.error).toBe('invalid_client');
    await expect(tessera.core.clients.create({ name: 'Web', kind: 'web', redirectUris: ['https://app.example.org/cb'], mayIntrospect: true }, by)).rejects.toMatchObject({ status: 400 });
  });

  it('refuses malformed requests with 400 invalid_request, and other methods with 405', async () => {
    const missing = await post(base, new URLSearchParams({}), asRecordsApi);
    expect(missing).toMatchObject({ status: 400, body: { error: 'invalid_request', error_description: "missing required parameter 'token'" } });
    const repeated = await post(base, `token=${pat}&token=${session}`, asRecordsApi);
    expect(repeated).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    const json = await post(base, JSON.stringify({ token: pat }), { ...asRecordsApi, 'content-type': 'application/json' });
    expect(json).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    const twoMethods = await post(base, new URLSearchParams({ token: pat, client_id: 'records-api', client_secret: rsSecret }), asRecordsApi);
    expect(twoMethods).toMatchObject({ status: 400, body: { error: 'invalid_request', error_description: 'use exactly one client authentication method' } });
    const huge = await post(base, new URLSearchParams({ token: 'x'.repeat(20_000) }), asRecordsApi);
    expect(huge.status).toBe(413);
    const get = await post(base, '', asRecordsApi, 'GET');
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });

  it('never serves a cached answer past the credential’s own expiry', async () => {
    const shortLived = (await tessera.core.clients.create({ clientId: 'short-tokens', name: 'Short tokens', kind: 'service', scopes: ['read'], accessTokenTtlSeconds: 60 }, by)).secret!;
    const issued = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { ...FORM, authorization: basic('short-tokens', shortLived) },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'read' }),
    });
    const token = String(((await issued.json()) as { access_token: string }).access_token);
    now = Date.now(); // oidc-provider stamps exp from the real time; the verifier and the cache read `now`
    const before = tessera.introspectionCache.stats();
    expect(await post(base, new URLSearchParams({ token }), asRecordsApi)).toMatchObject({ body: { active: true, exp: expect.any(Number) } });
    expect(await post(base, new URLSearchParams({ token }), asRecordsApi)).toMatchObject({ body: { active: true } });
    expect(tessera.introspectionCache.stats().hits).toBe(before.hits + 1);
    // The token expires in 60 s; the cache would keep the answer for 100 s.
    now += 61_000;
    expect(await post(base, new URLSearchParams({ token }), asRecordsApi)).toEqual(expect.objectContaining({ body: { active: false } }));
  });

  it('tells an OAuth access token who it is at /api/v1/me, as it does every other credential', async () => {
    const issued = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: { ...FORM, authorization: basic('harvester', serviceSecret) },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'read' }),
    });
    const token = String(((await issued.json()) as { access_token: string }).access_token);
    const me = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    expect(await me.json()).toEqual({ sub: 'harvester', username: null, email: null, scopes: ['read'], credential: 'access_token', client_id: 'harvester', exp: expect.any(Number) });
    const carol = (await tessera.core.accounts.findUser('carol'))!;
    const viaPat = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${pat}` } });
    expect(await viaPat.json()).toMatchObject({ sub: carol.id, username: 'carol', email: 'carol@example.org', credential: 'personal_access_token' });
  });

  it('slides a session used only at resource servers, as a use on Tessera itself would', async () => {
    const login = await fetch(`${base}/users/carol/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'carol-password' }) });
    const busy = String(((await login.json()) as { session: string }).session);
    // Idle timeout 120 s, cache 100 s: every answer from the stores extends the session.
    for (let step = 0; step < 6; step += 1) {
      now += 50_000;
      expect(await post(base, new URLSearchParams({ token: busy }), asRecordsApi)).toMatchObject({ body: { active: true, credential_kind: 'session' } });
    }
    now += 121_000;
    expect(await post(base, new URLSearchParams({ token: busy }), asRecordsApi)).toMatchObject({ body: { active: false } });
  });

  it('answers an opaque token inactive once its grant is gone, even if the grant\'s revocation missed the token', async () => {
    const adapters = createOidcAdapterFactory(tessera.ephemeral!);
    const carol = (await tessera.core.accounts.findUser('carol'))!;
    const iat = Math.floor(now / 1000);
    const issue = async (grantId: string) => {
      const value = randomBytes(32).toString('base64url');
      await adapters('Grant').upsert(grantId, { jti: grantId, kind: 'Grant', accountId: carol.id, clientId: 'cli', iat, exp: iat + 3600 }, 3600);
      await adapters('AccessToken').upsert(value, { jti: value, kind: 'AccessToken', accountId: carol.id, clientId: 'cli', grantId, scope: 'read', iat, exp: iat + 3600 }, 3600);
      return value;
    };
    const kept = await issue('grant-kept');
    const orphaned = await issue('grant-gone');
    await adapters('Grant').destroy('grant-gone');
    expect((await post(base, new URLSearchParams({ token: kept }), asRecordsApi)).body).toMatchObject({ active: true, sub: carol.id });
    expect((await post(base, new URLSearchParams({ token: orphaned }), asRecordsApi)).body).toEqual({ active: false });
  });

  it('answers from memory: the second introspection of a token is a cache hit', async () => {
    const before = tessera.introspectionCache.stats();
    await post(base, new URLSearchParams({ token: pat }), asRecordsApi);
    await post(base, new URLSearchParams({ token: pat }), asRecordsApi);
    const after = tessera.introspectionCache.stats();
    expect(after.serving).toBe(true);
    expect(after.hits - before.hits).toBeGreaterThanOrEqual(1);
  });

  it('drops a deleted client’s cached authentication at once', async () => {
    const secret = (await tessera.core.clients.create({ clientId: 'short-lived-api', name: 'Short-lived', kind: 'resource_server' }, by)).secret!;
    const headers = { authorization: basic('short-lived-api', secret) };
    expect((await post(base, new URLSearchParams({ token: pat }), headers)).status).toBe(200);
    await tessera.core.clients.delete('short-lived-api', by);
    expect((await post(base, new URLSearchParams({ token: pat }), headers)).status).toBe(401);
  });

  it('grants and withdraws introspection of a registered service client, at once (tessera client set-introspection)', async () => {
    const secret = (await tessera.core.clients.create({ clientId: 'late-worker', name: 'Late worker', kind: 'service', scopes: ['read'] }, by)).secret!;
    const headers = { authorization: basic('late-worker', secret) };
    const status = async () => (await post(base, new URLSearchParams({ token: pat }), headers)).status;
    expect(await status()).toBe(401);
    expect(await tessera.core.clients.setIntrospection('late-worker', true, by)).toMatchObject({ mayIntrospect: true });
    expect([await status(), await status()]).toEqual([200, 200]); // the second from the checked-Basic memory
    await tessera.core.clients.setIntrospection('late-worker', false, by);
    expect(await status()).toBe(401);
    await expect(tessera.core.clients.setIntrospection('records-api', false, by)).rejects.toMatchObject({ status: 409 });
    await expect(tessera.core.clients.setIntrospection('no-such-client', true, by)).rejects.toMatchObject({ status: 404 });
  });

  it('knows a client created just after its id was looked up in vain', async () => {
    const probe = await post(base, new URLSearchParams({ token: pat }), { authorization: basic('late-api', 'tsr_cs_nothing-yet') });
    expect(probe.status).toBe(401);
    const secret = (await tessera.core.clients.create({ clientId: 'late-api', name: 'Late', kind: 'resource_server' }, by)).secret!;
    expect((await post(base, new URLSearchParams({ token: pat }), { authorization: basic('late-api', secret) })).status).toBe(200);
  });
});

describe('the introspection cache when the invalidation channel drops', () => {
  let redis: ChildProcess;
  let db: TestDatabase;
  let tessera: TestTessera;
  let admin: Redis;

  beforeAll(async () => {
    const port = await freePort();
    redis = await startRedisServer(port);
    db = await createTestDatabase();
    tessera = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${port}`, TESSERA_REDIS_PREFIX: 'drop:' });
    admin = new Redis(port, '127.0.0.1');
  });
  afterAll(async () => {
    admin?.disconnect();
    await tessera?.stop();
    await db?.drop();
    await killRedisServer(redis);
  });

  it('flushes when the subscription is lost, so a revocation whose message was missed is honoured', async () => {
    const rsSecret = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    await tessera.core.accounts.createUser({ username: 'dave', password: 'dave-password', scopes: ['read'] }, by);
    const login = await fetch(`${tessera.url}/users/dave/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'dave-password' }) });
    const session = String(((await login.json()) as { session: string }).session);
    const introspect = () => post(tessera.url, new URLSearchParams({ token: session }), { authorization: basic('records-api', rsSecret) });
    expect((await introspect()).body).toMatchObject({ active: true });
    expect((await introspect()).body).toMatchObject({ active: true });
    expect(tessera.introspectionCache.stats().entries).toBeGreaterThan(0);

    // The subscriber connection dies: whatever is published until it is back is lost.
    await admin.client('KILL', 'TYPE', 'pubsub');
    for (let i = 0; tessera.introspectionCache.stats().entries > 0; i += 1) {
      if (i > 200) throw new Error('the cache was not flushed after the subscription dropped');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // A revocation nobody heard of: the session's record vanishes from Redis without a message.
    const keys = await admin.keys('drop:api-session:*');
    expect(keys.length).toBeGreaterThan(0);
    await admin.del(...keys);
    expect((await introspect()).body).toEqual({ active: false });

    // Once the subscription is back, the cache serves from memory again.
    for (let i = 0; !tessera.introspectionCache.stats().serving; i += 1) {
      if (i > 500) throw new Error('the cache did not resume after the subscription came back');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
});
