import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { documentedFetch } from '../support/documented-answers.ts';

// GET /auth/verify as a gateway calls it, for each credential kind. (A test through a real nginx
// comes with the rest of the introspection issue.)
describe('forward-auth for gateways', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let issuer: URL;
  const by = { actor: 'test' };
  let pat: string;
  let session: string;
  // Every answer below is held to /openapi.json (test/support/documented-answers.ts).
  const fetch = documentedFetch(() => issuer.origin);

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    issuer = new URL(`http://127.0.0.1:${port}`);
    tessera = await startTestTessera(
      { PORT: String(port), ISSUER: issuer.origin, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix },
      { oauth: { resources: { 'urn:tessera:api': { format: 'opaque' }, 'https://records.example.org': { format: 'jwt' } } } },
    );
    await tessera.core.accounts.createUser({ username: 'curator', email: 'curator@example.org', password: 'curator-password', scopes: ['read', 'deposit:write'] }, by);
    const user = (await tessera.core.accounts.findUser('curator'))!;
    pat = (await tessera.core.personalTokens.create(user, { name: 'gateway test', scopes: ['read'] }, by)).token;
    const login = await fetch(`${issuer.origin}/users/curator/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'curator-password' }) });
    session = String(((await login.json()) as { session: string }).session);
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  const verify = async (headers: Record<string, string>, query = '') => {
    const res = await fetch(`${issuer.origin}/auth/verify${query}`, { headers });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  };

  it('answers 401 with a challenge without a credential, or with an invalid one', async () => {
    const none = await verify({});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="tessera"');
    for (const token of ['garbage', `${pat.slice(0, -1)}${pat.endsWith('A') ? 'B' : 'A'}`, 'a.b.c']) {
      const bad = await verify({ authorization: `Bearer ${token}` });
      expect(bad.status).toBe(401);
      expect(bad.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    }
  });

  it('passes a personal token in any of its forms, with the identity headers', async () => {
    const forms: Record<string, string>[] = [
      { authorization: `Bearer ${pat}` },
      { authorization: `bEaReR ${pat}` },
      { 'x-original-uri': `/records/1?access_token=${pat}&x=1` },
      { 'x-forwarded-uri': `/records/1?access_token=${pat}` },
      { 'x-api-user': 'CURATOR@example.org', 'x-api-key': pat },
    ];
    for (const headers of forms) {
      const ok = await verify(headers);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-auth-username')).toBe('curator');
      expect(ok.headers.get('x-auth-scope')).toBe('read');
      expect(ok.headers.get('x-auth-subject')).toMatch(/^[0-9a-f-]{36}$/);
      expect(ok.headers.get('x-auth-client-id')).toBe('');
      expect(ok.headers.get('x-auth-credential')).toBe('personal_access_token');
      expect(ok.body).toEqual({ sub: ok.headers.get('x-auth-subject'), username: 'curator', scope: 'read', client_id: null, credential_kind: 'personal_access_token' });
    }
    expect((await verify({ 'x-api-user': 'someone', 'x-api-key': pat })).status).toBe(401);
  });

  it('requires every scope asked for: 403 insufficient_scope otherwise', async () => {
    expect((await verify({ authorization: `Bearer ${pat}` }, '?scope=read')).status).toBe(200);
    const missing = await verify({ authorization: `Bearer ${pat}` }, '?scope=read&scope=deposit:write');
    expect(missing.status).toBe(403);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="insufficient_scope", scope="read deposit:write"');
    expect(missing.body).toEqual({ message: 'This requires the scope deposit:write.', status: 403 });
    expect((await verify({ 'x-session': session }, '?scope=deposit:write')).status).toBe(200);
  });

  it('passes opaque and JWT OAuth access tokens, and refuses a revoked one', async () => {
    const { secret } = await tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by);
    const config = await oidc.discovery(issuer, 'harvester', undefined, oidc.ClientSecretBasic(secret!), { execute: [oidc.allowInsecureRequests] });
    const opaque = (await oidc.clientCredentialsGrant(config)).access_token;
    const ok = await verify({ authorization: `Bearer ${opaque}` });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-auth-client-id')).toBe('harvester');
    expect(ok.headers.get('x-auth-subject')).toBe('harvester');
    await oidc.tokenRevocation(config, opaque);
    expect((await verify({ authorization: `Bearer ${opaque}` })).status).toBe(401);

    const { secret: jwtSecret } = await tessera.core.clients.create({ clientId: 'jwt-harvester', name: 'JWT harvester', kind: 'service', scopes: ['read'], defaultResource: 'https://records.example.org' }, by);
    const jwtConfig = await oidc.discovery(issuer, 'jwt-harvester', undefined, oidc.ClientSecretBasic(jwtSecret!), { execute: [oidc.allowInsecureRequests] });
    const jwt = (await oidc.clientCredentialsGrant(jwtConfig)).access_token;
    expect(jwt.split('.')).toHaveLength(3);
    const jwtOk = await verify({ authorization: `Bearer ${jwt}` });
    expect(jwtOk.status).toBe(200);
    expect(jwtOk.headers.get('x-auth-client-id')).toBe('jwt-harvester');
    // A JWT whose client is deleted no longer passes.
    await tessera.core.clients.delete('jwt-harvester', by);
    expect((await verify({ authorization: `Bearer ${jwt}` })).status).toBe(401);
  });

  it('introspects JWT and opaque access tokens for resource servers, and not a disabled user\'s', async () => {
    const { secret } = await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server', scopes: ['read'] }, by);
    const introspect = async (token: string) =>
      (await (
        await fetch(`${issuer.origin}/oauth/introspect`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`records-api:${secret}`).toString('base64')}` },
          body: new URLSearchParams({ token }),
        })
      ).json()) as Record<string, unknown>;
    const { secret: svc } = await tessera.core.clients.create({ clientId: 'jwt-svc', name: 'JWT svc', kind: 'service', scopes: ['read'], defaultResource: 'https://records.example.org' }, by);
    const config = await oidc.discovery(issuer, 'jwt-svc', undefined, oidc.ClientSecretBasic(svc!), { execute: [oidc.allowInsecureRequests] });
    const jwt = (await oidc.clientCredentialsGrant(config)).access_token;
    expect(await introspect(jwt)).toMatchObject({ active: true, credential_kind: 'access_token', client_id: 'jwt-svc', sub: 'jwt-svc', scope: 'read', aud: 'https://records.example.org', iss: issuer.origin });
    expect(await introspect('not-a-token')).toEqual({ active: false });

    // A session token of a user who is then disabled: inactive at once.
    await tessera.core.accounts.createUser({ username: 'temp', password: 'temp-password-1', scopes: ['read'] }, by);
    const login = await fetch(`${issuer.origin}/users/temp/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'temp-password-1' }) });
    const tempSession = String(((await login.json()) as { session: string }).session);
    expect(await introspect(tempSession)).toMatchObject({ active: true, credential_kind: 'session', username: 'temp' });
    await tessera.core.accounts.setDisabled('temp', true, by);
    expect(await introspect(tempSession)).toEqual({ active: false });
  });

  it('answered as /openapi.json says, every time (the answers checked above)', () => {
    expect([...fetch.checked]).toEqual(expect.arrayContaining(['GET /auth/verify 200', 'GET /auth/verify 401', 'GET /auth/verify 403']));
  });
});
