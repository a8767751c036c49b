import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { createTesseraVerifier, type TesseraVerifierOptions } from '@tessera/verifier';
import { HttpBrowser } from '../support/http-browser.ts';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

// The resource-server middleware (`@tessera/verifier`) in a real express API, against a real
// Tessera over real HTTP. Nothing is mocked: the only wrapper is a fetch that counts what the
// verifier asks Tessera, and the clock is injected where expiry matters.

const JWT_API = 'https://records.example.org';
const by = { actor: 'test' };

/** A fetch that records the path of every request the verifier makes (attempts, also failed ones). */
function countingFetch() {
  const paths: string[] = [];
  const counted: typeof fetch = (input, init) => {
    paths.push(new URL(input instanceof Request ? input.url : String(input)).pathname);
    return fetch(input, init);
  };
  return { fetch: counted, paths, count: (path: string) => paths.filter((p) => p === path).length };
}

interface Api {
  url: string;
  paths: string[];
  introspections: () => number;
  unavailable: Error[];
}

describe('@tessera/verifier: the resource-server middleware', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let issuer: string;
  let rsSecret: string;
  let curatorId: string;
  let pat: string;
  let session: string;
  const servers: Server[] = [];

  /**
   * A small express API protected by a verifier with `options` (over those of the `records-api`
   * resource server): /whoami needs any credential, /records `read`, POST /deposits
   * `deposit:write`, /publish `read` and `deposit:actions`.
   */
  async function startApi(options: Partial<TesseraVerifierOptions> = {}, appSettings: { trustProxy?: string } = {}): Promise<Api> {
    const counter = countingFetch();
    const unavailable: Error[] = [];
    const verifier = createTesseraVerifier({
      issuer,
      clientId: 'records-api',
      clientSecret: rsSecret,
      fetch: counter.fetch,
      onUnavailable: (error) => unavailable.push(error),
      ...options,
    });
    const app = express();
    if (appSettings.trustProxy) app.set('trust proxy', appSettings.trustProxy);
    app.get('/whoami', verifier.authenticate(), (req, res) => res.json(req.tessera));
    app.get('/records', verifier.requireScopes('read'), (req, res) => res.json({ records: [], caller: req.tessera!.sub }));
    app.post('/deposits', verifier.requireScopes('deposit:write'), (_req, res) => res.status(201).json({ id: '1' }));
    app.get('/publish', verifier.requireScopes('read', 'deposit:actions'), (_req, res) => res.json({ published: true }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    servers.push(server);
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      paths: counter.paths,
      introspections: () => counter.count('/oauth/introspect'),
      unavailable,
    };
  }

  async function call(api: Api, path: string, headers: Record<string, string> = {}, method = 'GET') {
    const res = await fetch(`${api.url}${path}`, { method, headers });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  }

  async function clientCredentialsToken(clientId: string, options: { defaultResource?: string; accessTokenTtlSeconds?: number } = {}) {
    const { secret } = await tessera.core.clients.create({ clientId, name: clientId, kind: 'service', scopes: ['read'], ...options }, by);
    const config = await oidc.discovery(new URL(issuer), clientId, undefined, oidc.ClientSecretBasic(secret!), { execute: [oidc.allowInsecureRequests] });
    return { config, token: (await oidc.clientCredentialsGrant(config)).access_token };
  }

  /** A device login of the curator, approved on Tessera's pages as a person would. */
  async function deviceLogin(scope: string) {
    const config = await oidc.discovery(new URL(issuer), 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(config, { scope });
    const browser = new HttpBrowser(issuer);
    const confirm = await browser.submit(await browser.request('/device'), { user_code: start.user_code });
    const consent = await browser.submit(confirm, { confirm: 'yes' });
    const done = await browser.submit(consent, { username: 'curator', password: 'curator-password', decision: 'approve' });
    expect(done.html).toMatch(/Device connected/);
    return oidc.pollDeviceAuthorizationGrant(config, start);
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    tessera = await startTestTessera(
      { PORT: String(port), ISSUER: issuer, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_DEVICE_POLL_INTERVAL: '1' },
      { oauth: { resources: { 'urn:tessera:api': { format: 'opaque' }, [JWT_API]: { format: 'jwt' } } } },
    );
    rsSecret = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server', scopes: ['read'] }, by)).secret!;
    await tessera.core.clients.create({ clientId: 'cli', name: 'Repository CLI', kind: 'device', scopes: ['read', 'deposit:write', 'offline_access'] }, by);
    await tessera.core.accounts.createUser({ username: 'curator', email: 'curator@example.org', password: 'curator-password', scopes: ['read', 'deposit:write'] }, by);
    const curator = (await tessera.core.accounts.findUser('curator'))!;
    curatorId = curator.id;
    pat = (await tessera.core.personalTokens.create(curator, { name: 'scripts', scopes: ['read'] }, by)).token;
    const login = await fetch(`${issuer}/users/curator/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'curator-password' }) });
    session = String(((await login.json()) as { session: string }).session);
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it('accepts every kind of credential, in every place Tessera accepts it, and says who is calling', async () => {
    const api = await startApi({ sessionHeaderAliases: ['X-ArchivesSpace-Session'] });
    const asCurator = { sub: curatorId, username: 'curator', clientId: null, verifiedBy: 'introspection' };
    const forms: [Record<string, string>, Record<string, unknown>][] = [
      [{ authorization: `Bearer ${pat}` }, { ...asCurator, tokenType: 'personal_access_token', scopes: ['read'], source: 'authorization' }],
      [{ authorization: `bEaReR ${pat}` }, { tokenType: 'personal_access_token', source: 'authorization' }],
      [{ 'x-api-user': 'CURATOR', 'x-api-key': pat }, { ...asCurator, tokenType: 'personal_access_token', source: 'api_key' }],
      [{ 'x-api-user': curatorId, 'x-api-key': pat }, { tokenType: 'personal_access_token', source: 'api_key' }],
      [{ 'x-session': session }, { ...asCurator, tokenType: 'session', scopes: ['read', 'deposit:write'], source: 'session_header' }],
      [{ 'x-archivesspace-session': session }, { tokenType: 'session', source: 'session_header' }],
      [{ authorization: `Bearer ${session}` }, { tokenType: 'session', source: 'authorization' }],
    ];
    for (const [headers, expected] of forms) {
      const ok = await call(api, '/whoami', headers);
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject(expected);
    }

    const opaque = await clientCredentialsToken('harvester');
    expect(await call(api, '/whoami', { authorization: `Bearer ${opaque.token}` })).toMatchObject({
      status: 200,
      body: { sub: 'harvester', username: null, clientId: 'harvester', tokenType: 'access_token', scopes: ['read'], aud: ['urn:tessera:api'] },
    });
    const device = await deviceLogin('read deposit:write');
    expect(await call(api, '/whoami', { authorization: `Bearer ${device.access_token}` })).toMatchObject({
      status: 200,
      body: { sub: curatorId, username: 'curator', clientId: 'cli', tokenType: 'access_token', scopes: ['read', 'deposit:write'] },
    });
    expect((await call(api, '/deposits', { authorization: `Bearer ${device.access_token}` }, 'POST')).status).toBe(201);
  });

  it('answers 401 with a bare Bearer challenge when no credential is presented', async () => {
    const api = await startApi();
    const absent: Record<string, string>[] = [{}, { authorization: 'Basic Zm9vOmJhcg==' }, { authorization: 'Bearer' }, { 'x-session': '  ' }];
    for (const headers of absent) {
      const none = await call(api, '/records', headers);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="tessera"');
      expect(none.body).toEqual({ message: 'Authentication required.', status: 401 });
    }
    expect(api.paths).toEqual([]);
    const realm = await startApi({ realm: 'Records "API"' });
    expect((await call(realm, '/records')).headers.get('www-authenticate')).toBe('Bearer realm="Records \\"API\\""');
  });

  it('answers 401 invalid_token for an unknown, mistyped or revoked credential', async () => {
    const api = await startApi();
    const mistyped = `${pat.slice(0, -1)}${pat.endsWith('A') ? 'B' : 'A'}`;
    for (const token of ['garbage', mistyped, 'a.b.c', 'x'.repeat(5000)]) {
      const bad = await call(api, '/records', { authorization: `Bearer ${token}` });
      expect(bad.status).toBe(401);
      expect(bad.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="invalid_token"');
      expect(bad.body).toEqual({ message: 'The credential is invalid, expired or revoked.', status: 401 });
    }

    const { config, token } = await clientCredentialsToken('revoked-harvester');
    await oidc.tokenRevocation(config, token);
    expect((await call(api, '/records', { authorization: `Bearer ${token}` })).status).toBe(401);

    const curator = (await tessera.core.accounts.findUser('curator'))!;
    const { token: doomed, record } = await tessera.core.personalTokens.create(curator, { name: 'doomed', scopes: ['read'] }, by);
    await tessera.core.personalTokens.revoke(curator.id, record.id, by);
    expect((await call(api, '/records', { 'x-api-user': 'curator', 'x-api-key': doomed })).status).toBe(401);
  });

  it('keeps an answer only for the cache TTL: a revoked credential passes at most that long', async () => {
    let now = Date.now();
    const api = await startApi({ clock: () => now, cache: { ttlSeconds: 10 } });
    const { config, token } = await clientCredentialsToken('short-cache-harvester');
    expect((await call(api, '/records', { authorization: `Bearer ${token}` })).status).toBe(200);
    await oidc.tokenRevocation(config, token);
    now += 9_000;
    expect((await call(api, '/records', { authorization: `Bearer ${token}` })).status).toBe(200); // the cached answer
    expect(api.introspections()).toBe(1);
    now += 1_000;
    const revoked = await call(api, '/records', { authorization: `Bearer ${token}` });
    expect(revoked.status).toBe(401);
    expect(revoked.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect(api.introspections()).toBe(2);
  });

  it('never serves a cached answer past the token\'s exp, however long the cache TTL', async () => {
    let now = Date.now();
    const api = await startApi({ clock: () => now, cache: { ttlSeconds: 86_400 } });
    const { token } = await clientCredentialsToken('short-lived-harvester', { accessTokenTtlSeconds: 60 });
    // Read after the token was issued: its exp counts from a whole second no later than this.
    now = Date.now();
    const first = await call(api, '/whoami', { authorization: `Bearer ${token}` });
    expect(first.status).toBe(200);
    const exp = Number(first.body.exp);
    expect(exp * 1000 - now).toBeLessThanOrEqual(60_000);

    now = exp * 1000 - 1;
    expect((await call(api, '/whoami', { authorization: `Bearer ${token}` })).status).toBe(200);
    expect(api.introspections()).toBe(1);
    // At exp the entry is gone. (Tessera, on the real clock, still says active: the verifier refuses it by its own clock.)
    now = exp * 1000;
    expect((await call(api, '/whoami', { authorization: `Bearer ${token}` })).status).toBe(401);
    expect(api.introspections()).toBe(2);
  });

  it('answers 403 insufficient_scope naming every scope the route needs', async () => {
    const api = await startApi();
    expect((await call(api, '/records', { authorization: `Bearer ${pat}` })).status).toBe(200);
    const write = await call(api, '/deposits', { authorization: `Bearer ${pat}` }, 'POST');
    expect(write.status).toBe(403);
    expect(write.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="insufficient_scope", scope="deposit:write"');
    expect(write.body).toEqual({ message: 'This requires the scope deposit:write.', status: 403 });
    const publish = await call(api, '/publish', { 'x-session': session });
    expect(publish.status).toBe(403);
    expect(publish.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="insufficient_scope", scope="read deposit:actions"');
    expect(publish.body).toEqual({ message: 'This requires the scope deposit:actions.', status: 403 });
    expect((await call(api, '/deposits', { 'x-session': session }, 'POST')).status).toBe(201);
  });

  it('refuses ?access_token= over plain http unless configured for development', async () => {
    const api = await startApi({}, { trustProxy: 'loopback' });
    const refused = await call(api, `/records?access_token=${pat}`);
    expect(refused.status).toBe(400);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="invalid_request", error_description="access_token in the query string is refused over plain http"');
    expect(refused.body).toEqual({ message: 'An access token in the query string is refused over plain http: send it in the Authorization header.', status: 400 });
    expect(api.introspections()).toBe(0);
    // Behind a trusted TLS-terminating proxy the request did come over https.
    const proxied = await call(api, `/records?access_token=${pat}`, { 'x-forwarded-proto': 'https' });
    expect(proxied.status).toBe(200);
    expect(proxied.headers.get('cache-control')).toBe('private');

    const untrusted = await startApi();
    expect((await call(untrusted, `/records?access_token=${pat}`, { 'x-forwarded-proto': 'https' })).status).toBe(400);
    const development = await startApi({ allowQueryTokenOverHttp: true });
    expect(await call(development, `/whoami?x=1&access_token=${encodeURIComponent(pat)}`)).toMatchObject({ status: 200, body: { username: 'curator', source: 'query' } });
  });

  it('refuses a refresh token, which Tessera introspects as active', async () => {
    const tokens = await deviceLogin('read offline_access');
    const introspected = await fetch(`${issuer}/oauth/introspect`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`records-api:${rsSecret}`).toString('base64')}` },
      body: new URLSearchParams({ token: tokens.refresh_token! }),
    });
    const answer = (await introspected.json()) as Record<string, unknown>;
    expect(answer).toMatchObject({ active: true, credential_kind: 'refresh_token' });
    // RFC 7662 §2.2's token_type is the OAuth token type a resource server accepts: a refresh token has none.
    expect(answer.token_type).toBeUndefined();

    const api = await startApi();
    const refused = await call(api, '/records', { authorization: `Bearer ${tokens.refresh_token}` });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="invalid_token"');
    expect(refused.body).toEqual({ message: 'A refresh token cannot be used to call an API: send an access token.', status: 401 });
    expect((await call(api, '/records', { authorization: `Bearer ${tokens.access_token}` })).status).toBe(200);
  });

  it('takes the API-key pair only with a personal token of the user it names, by username or e-mail in any case (APTrust sends the e-mail)', async () => {
    const api = await startApi({ apiKeyHeader: 'X-Pharos-API-Key', apiUserHeader: 'X-Pharos-API-User' });
    for (const named of ['curator', 'CuRaToR', 'curator@example.org', 'Curator@Example.ORG']) {
      const accepted = await call(api, '/whoami', { 'x-pharos-api-user': named, 'x-pharos-api-key': pat });
      expect({ named, status: accepted.status }).toEqual({ named, status: 200 });
      // The e-mail serves the check only: the principal is what it always was.
      expect(accepted.body).toMatchObject({ sub: curatorId, username: 'curator', tokenType: 'personal_access_token', source: 'api_key' });
      expect(JSON.stringify(accepted.body)).not.toContain('example.org');
      // Tessera's own forward-auth agrees on every one of them.
      expect((await fetch(`${issuer}/auth/verify`, { headers: { 'x-api-user': named, 'x-api-key': pat } })).status).toBe(200);
    }
    await tessera.core.accounts.createUser({ username: 'someone', email: 'someone@example.org', password: 'someone-password', scopes: ['read'] }, by);
    const wrong: Record<string, string>[] = [
      { 'x-pharos-api-user': 'someone', 'x-pharos-api-key': pat },
      { 'x-pharos-api-user': 'someone@example.org', 'x-pharos-api-key': pat },
      { 'x-pharos-api-user': 'curator@example.org.evil', 'x-pharos-api-key': pat },
      { 'x-pharos-api-user': 'nobody', 'x-pharos-api-key': pat },
      { 'x-pharos-api-key': pat },
      { 'x-pharos-api-user': 'curator', 'x-pharos-api-key': session },
    ];
    for (const headers of wrong) {
      const refused = await call(api, '/records', headers);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="invalid_token"');
    }
    // The default names are not looked at once others are configured.
    expect((await call(api, '/records', { 'x-api-user': 'curator', 'x-api-key': pat })).status).toBe(401);
  });

  it('verifies JWT access tokens locally: the keys once, never an introspection', async () => {
    const { token } = await clientCredentialsToken('jwt-harvester', { defaultResource: JWT_API });
    expect(token.split('.')).toHaveLength(3);
    const api = await startApi({ audience: JWT_API });
    for (let i = 0; i < 3; i++) {
      expect(await call(api, '/whoami', { authorization: `Bearer ${token}` })).toMatchObject({
        status: 200,
        body: { sub: 'jwt-harvester', clientId: 'jwt-harvester', tokenType: 'access_token', scopes: ['read'], aud: [JWT_API], verifiedBy: 'jwt' },
      });
    }
    expect(api.paths).toEqual(['/.well-known/openid-configuration', '/.well-known/jwks.json']);

    // A forged signature, and a token for another API, are refused.
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const forged = `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    expect((await call(api, '/whoami', { authorization: `Bearer ${forged}` })).status).toBe(401);
    const otherApi = await startApi({ audience: 'urn:tessera:api' });
    expect((await call(otherApi, '/whoami', { authorization: `Bearer ${token}` })).status).toBe(401);
    expect(otherApi.introspections()).toBe(0);
    // Asked to, the verifier introspects JWTs like any token.
    const introspecting = await startApi({ audience: JWT_API, jwt: 'introspect' });
    expect(await call(introspecting, '/whoami', { authorization: `Bearer ${token}` })).toMatchObject({ status: 200, body: { verifiedBy: 'introspection', aud: [JWT_API] } });
    expect(introspecting.introspections()).toBe(1);
  });

  it('refuses an opaque access token meant for another API when an audience is configured', async () => {
    const { token } = await clientCredentialsToken('default-audience-harvester');
    const api = await startApi({ audience: JWT_API });
    expect((await call(api, '/records', { authorization: `Bearer ${token}` })).status).toBe(401);
    // Sessions and personal tokens have no audience: they are Tessera's for every API.
    expect((await call(api, '/records', { authorization: `Bearer ${pat}` })).status).toBe(200);
    const both = await startApi({ audience: [JWT_API, 'urn:tessera:api'] });
    expect((await call(both, '/records', { authorization: `Bearer ${token}` })).status).toBe(200);
  });

  it('shares one introspection among concurrent requests with the same token', async () => {
    const api = await startApi();
    const curator = (await tessera.core.accounts.findUser('curator'))!;
    const { token } = await tessera.core.personalTokens.create(curator, { name: 'burst', scopes: ['read'] }, by);
    const statuses = await Promise.all(Array.from({ length: 25 }, () => call(api, '/records', { authorization: `Bearer ${token}` }).then((r) => r.status)));
    expect(statuses).toEqual(Array(25).fill(200));
    expect(api.introspections()).toBe(1);
  });

  it('fails closed with 503 when Tessera cannot be reached, and does not remember the failure', async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const api = await startApi({ issuer: nowhere, timeoutMs: 2000 });
    for (let attempt = 1; attempt <= 2; attempt++) {
      const down = await call(api, '/records', { authorization: `Bearer ${pat}` });
      expect(down.status).toBe(503);
      expect(down.headers.get('retry-after')).toBe('5');
      expect(down.body).toEqual({ message: 'The credential cannot be checked right now: the authorization service is unavailable. Try again later.', status: 503 });
      expect(api.paths).toHaveLength(attempt); // each request asks again
    }
    expect(api.unavailable[0]!.message).toMatch(/^discovery at http:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration: request failed/);

    // A wrong resource-server secret is Tessera refusing the API, not the caller: 503 too.
    const misconfigured = await startApi({ clientSecret: 'tsr_cs_wrong' });
    expect((await call(misconfigured, '/records', { authorization: `Bearer ${pat}` })).status).toBe(503);
    expect(misconfigured.unavailable[0]!.message).toMatch(/introspection at .*: Tessera answered 401/);
  });

  // Last: stops Tessera.
  it('keeps verifying JWTs locally while Tessera is down; other credentials get 503', async () => {
    const { token: jwt } = await clientCredentialsToken('jwt-outage-harvester', { defaultResource: JWT_API });
    const curator = (await tessera.core.accounts.findUser('curator'))!;
    const { token: fresh } = await tessera.core.personalTokens.create(curator, { name: 'outage', scopes: ['read'] }, by);
    const api = await startApi({ audience: JWT_API });
    expect((await call(api, '/records', { authorization: `Bearer ${jwt}` })).status).toBe(200);
    const asked = api.paths.length;

    await tessera.stop();
    expect((await call(api, '/records', { authorization: `Bearer ${jwt}` })).status).toBe(200);
    expect(api.paths).toHaveLength(asked);
    expect((await call(api, '/records', { authorization: `Bearer ${fresh}` })).status).toBe(503);
  });
});
