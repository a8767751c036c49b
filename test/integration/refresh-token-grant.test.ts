import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { approveDevice } from '../support/device-approval.ts';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { basic, directPath, introspectAs, tokenRequest } from '../support/token-requests.ts';
import { oidcDigest, oidcKeys } from '../../src/oauth/adapter/oidc-keys.ts';
import { openAnswer } from '../../src/oauth/grants/refresh-reuse-grace.ts';

// Refresh grants of public clients are issued by Tessera itself where oidc-provider would grant
// them (src/oauth/grants/refresh-token-grant.ts), and by oidc-provider otherwise. The token
// endpoint's observer says which answered; these tests hold the two to the same answers, and check
// that what the direct path leaves alone (reuse, other clients, ID tokens, …) is still
// oidc-provider's. With direct grants off (TESSERA_DIRECT_GRANTS=false) oidc-provider answers all:
// directPath.

const by = { actor: 'test' };
const OPAQUE_API = 'urn:tessera:api';
const JWT_API = 'https://records.example.org';

/** What may differ between two tokens of two logins: their ids, times and grants. */
const timeless = ({ jti: _jti, iat: _iat, exp: _exp, nbf: _nbf, tessera_grant: _grant, ...rest }: Record<string, unknown>) => rest;
/** An answer with its token values masked (they differ by nature). */
const masked = (body: Record<string, unknown>) => ({ ...body, access_token: 'x', ...(body.refresh_token ? { refresh_token: 'x' } : {}) });

describe('refresh_token issued ahead of oidc-provider', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let issuer: URL;
  let rs: string;
  // Tessera's clock: the reuse grace is decided by it, so a test moves it instead of sleeping.
  let offsetMs = 0;
  const advance = (ms: number) => void (offsetMs += ms);
  const graceMs = () => tessera.config.oauth.refreshTokenReuseGraceSeconds * 1000;

  const refresh = (form: Record<string, string> | URLSearchParams, headers: Record<string, string> = {}) => tokenRequest(tessera, form, headers);

  const introspect = (value: string) => introspectAs(tessera, { id: 'records-api', secret: rs }, value);

  /** A device login of alice's through the verification pages: its tokens. */
  async function login(clientId: string, scope: string) {
    const config = await oidc.discovery(issuer, clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(config, { scope });
    await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password');
    return oidc.pollDeviceAuthorizationGrant(config, start);
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    issuer = new URL(`http://127.0.0.1:${port}`);
    tessera = await startTestTessera(
      { PORT: String(port), ISSUER: issuer.origin, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_DEVICE_POLL_INTERVAL: '1' },
      // Many device logins from one address: more than the user-code limit allows an hour.
      { oauth: { resources: { [OPAQUE_API]: { format: 'opaque' }, [JWT_API]: { format: 'jwt' } }, defaultResource: OPAQUE_API, userCodeAttemptsPerIpPerHour: 1000 } },
      { logLevel: 'debug', clock: () => Date.now() + offsetMs },
    );
    rs = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    await tessera.core.accounts.createUser({ username: 'alice', password: 'alice-password', scopes: ['read', 'deposit:write'] }, by);
    await tessera.core.clients.create({ clientId: 'cli', name: 'Repository CLI', kind: 'device', scopes: ['read', 'deposit:write', 'offline_access'] }, by);
    await tessera.core.clients.create({ clientId: 'signing-cli', name: 'Signing CLI', kind: 'device', scopes: ['read', 'offline_access'], defaultResource: JWT_API }, by);
    await tessera.core.clients.create({ clientId: 'oidc-cli', name: 'OpenID CLI', kind: 'device', scopes: ['openid', 'read', 'offline_access'] }, by);
    await tessera.core.clients.create({ clientId: 'other-cli', name: 'Other CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it('answers exactly as oidc-provider does: headers, members, lifetimes, what introspection says of both tokens', async () => {
    const [one, two] = [await login('cli', 'read deposit:write offline_access'), await login('cli', 'read deposit:write offline_access')];
    const direct = await refresh({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: one.refresh_token! });
    // Naming the granted resource is a parameter the direct path leaves to oidc-provider.
    const viaProvider = await refresh({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: two.refresh_token!, resource: OPAQUE_API });
    expect([direct.answeredBy, viaProvider.answeredBy]).toEqual([directPath(tessera), 'oidc-provider']);

    expect(direct.status).toBe(200);
    expect(direct.headers).toEqual(viaProvider.headers);
    expect(Object.keys(direct.body)).toEqual(Object.keys(viaProvider.body));
    expect(masked(direct.body)).toEqual(masked(viaProvider.body));
    expect(direct.body).toMatchObject({ expires_in: 3600, scope: 'read deposit:write', token_type: 'Bearer' });
    expect(String(direct.body.access_token)).toHaveLength(String(viaProvider.body.access_token).length);
    expect(String(direct.body.refresh_token)).toHaveLength(String(viaProvider.body.refresh_token).length);

    for (const kind of ['access_token', 'refresh_token'] as const) {
      const [a, b] = [await introspect(String(direct.body[kind])), await introspect(String(viaProvider.body[kind]))];
      expect(a).toMatchObject({ active: true, client_id: 'cli', username: 'alice', credential_kind: kind });
      expect(timeless(a)).toEqual(timeless(b));
    }
    // Rotated: the old refresh tokens are spent.
    expect(await introspect(one.refresh_token!)).toEqual({ active: false });
    expect(await introspect(two.refresh_token!)).toEqual({ active: false });

    // Each path redeems what the other issued, and the chain goes on.
    const next = await refresh({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: String(viaProvider.body.refresh_token) });
    const other = await refresh({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: String(direct.body.refresh_token), resource: OPAQUE_API });
    expect([next.status, next.answeredBy, other.status, other.answeredBy]).toEqual([200, directPath(tessera), 200, 'oidc-provider']);
    expect(masked(next.body)).toEqual(masked(other.body));
  });

  it('signs an RFC 9068 JWT for a client whose resource wants one, with the claims oidc-provider gives', async () => {
    const [one, two] = [await login('signing-cli', 'read offline_access'), await login('signing-cli', 'read offline_access')];
    const direct = await refresh({ grant_type: 'refresh_token', client_id: 'signing-cli', refresh_token: one.refresh_token! });
    const viaProvider = await refresh({ grant_type: 'refresh_token', client_id: 'signing-cli', refresh_token: two.refresh_token!, resource: JWT_API });
    expect([direct.answeredBy, viaProvider.answeredBy]).toEqual([directPath(tessera), 'oidc-provider']);
    expect(direct.headers).toEqual(viaProvider.headers);
    expect(masked(direct.body)).toEqual(masked(viaProvider.body));
    const [a, b] = [String(direct.body.access_token), String(viaProvider.body.access_token)];
    expect(decodeProtectedHeader(a)).toEqual(decodeProtectedHeader(b));
    const claims = decodeJwt(a);
    expect(claims).toMatchObject({ client_id: 'signing-cli', aud: JWT_API, scope: 'read', iss: issuer.origin });
    // Tied to its own grant, as oidc-provider ties it: revoking the login ends the JWT too.
    expect(typeof claims.tessera_grant).toBe('string');
    expect(timeless(claims)).toEqual(timeless(decodeJwt(b)));
    expect(timeless(await introspect(a))).toEqual(timeless(await introspect(b)));
  });

  it('narrows to a requested scope as oidc-provider does, and leaves a wider one to its refusal', async () => {
    const tokens = await login('cli', 'read deposit:write offline_access');
    const narrowed = await refresh({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: tokens.refresh_token!, scope: 'read' });
    expect([narrowed.status, narrowed.answeredBy, narrowed.body.scope]).toEqual([200, directPath(tessera), 'read']);
    expect(await introspect(String(narrowed.body.access_token))).toMatchObject({ active: true, scope: 'read' });
    // The refresh token keeps the grant's scopes: a later refresh may ask for them again.
    const wider = await refresh({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: String(narrowed.body.refresh_token), scope: 'read deposit:write' });
    expect([wider.status, wider.answeredBy, wider.body.scope]).toEqual([200, directPath(tessera), 'read deposit:write']);
    const beyond = await refresh({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: String(wider.body.refresh_token), scope: 'read deposit:actions' });
    expect([beyond.status, beyond.body.error, beyond.answeredBy]).toEqual([400, 'invalid_scope', 'oidc-provider']);
  });

  it('leaves every request it would not grant to oidc-provider, which answers it as before', async () => {
    const tokens = await login('cli', 'read offline_access');
    const rt = tokens.refresh_token!;
    const form = { grant_type: 'refresh_token', client_id: 'cli', refresh_token: rt };
    const cases: Array<[string, Record<string, string>, Record<string, string>, number, string]> = [
      ['an unknown refresh token', { ...form, refresh_token: 'not-a-refresh-token' }, {}, 400, 'invalid_grant'],
      ["another client's refresh token", { ...form, client_id: 'other-cli' }, {}, 400, 'invalid_grant'],
      ['an unknown client', { ...form, client_id: 'nobody' }, {}, 401, 'invalid_client'],
      ['a secret for a public client', form, { authorization: basic('cli', 'some-secret') }, 401, 'invalid_client'],
      ['a browser origin', form, { origin: 'https://app.example.org' }, 400, 'invalid_request'],
    ];
    for (const [what, body, headers, status, error] of cases) {
      const answer = await refresh(body, headers);
      expect({ what, status: answer.status, error: answer.body.error, answeredBy: answer.answeredBy }).toEqual({ what, status, error, answeredBy: 'oidc-provider' });
    }
    const repeated = new URLSearchParams([...Object.entries(form), ['scope', 'read'], ['scope', 'read']]);
    const twice = await refresh(repeated);
    expect([twice.status, twice.body.error, twice.answeredBy]).toEqual([400, 'invalid_request', 'oidc-provider']);
    // A request with a DPoP header is oidc-provider's, which binds tokens to the proof's key (dpop.test.ts).
    const dpop = await refresh(form, { dpop: 'not-a-jwt' });
    expect([dpop.status, dpop.body.error, dpop.answeredBy]).toEqual([400, 'invalid_dpop_proof', 'oidc-provider']);

    // None of those spent the token.
    const first = await refresh(form);
    expect([first.status, first.answeredBy]).toEqual([200, directPath(tessera)]);
    // Reuse of a spent refresh token after the reuse grace is oidc-provider's: refused, and the
    // whole login revoked.
    advance(graceMs());
    const reused = await refresh(form);
    expect([reused.status, reused.body.error, reused.answeredBy]).toEqual([400, 'invalid_grant', 'oidc-provider']);
    expect(await introspect(String(first.body.access_token))).toEqual({ active: false });
    const after = await refresh({ ...form, refresh_token: String(first.body.refresh_token) });
    expect([after.status, after.body.error]).toEqual([400, 'invalid_grant']);

    // A resource nobody defined: oidc-provider's refusal, after it has spent the token (its order).
    const another = await login('cli', 'read offline_access');
    const target = await refresh({ ...form, refresh_token: another.refresh_token!, resource: 'https://elsewhere.example.org' });
    expect([target.status, target.body.error, target.answeredBy]).toEqual([400, 'invalid_target', 'oidc-provider']);
  });

  it('leaves a login with an ID token to oidc-provider', async () => {
    const tokens = await login('oidc-cli', 'openid read offline_access');
    const answer = await refresh({ grant_type: 'refresh_token', client_id: 'oidc-cli', refresh_token: tokens.refresh_token! });
    expect([answer.status, answer.answeredBy]).toEqual([200, 'oidc-provider']);
    expect(typeof answer.body.id_token).toBe('string');
  });

  it('refuses a disabled account, through oidc-provider', async () => {
    await tessera.core.accounts.createUser({ username: 'bob', password: 'bob-password', scopes: ['read'] }, by);
    const config = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(config, { scope: 'read offline_access' });
    await approveDevice(issuer.origin, start.user_code, 'bob', 'bob-password');
    const tokens = await oidc.pollDeviceAuthorizationGrant(config, start);
    await tessera.core.accounts.setDisabled('bob', true, by);
    const answer = await refresh({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: tokens.refresh_token! });
    expect([answer.status, answer.body.error, answer.answeredBy]).toEqual([400, 'invalid_grant', 'oidc-provider']);
  });

  /** openid-client for the public client `clientId`, noting who answered each of its token requests. */
  async function openidClient(clientId: string) {
    const config = await oidc.discovery(issuer, clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const answeredBy: (string | undefined)[] = [];
    config[oidc.customFetch] = async (url, options) => {
      const requestId = `oc-${Math.random().toString(36).slice(2)}`;
      const response = await fetch(url, { ...options, headers: { ...options.headers, 'x-request-id': requestId } } as RequestInit);
      if (new URL(url).pathname === '/oauth/token') {
        // Read first: the observer is told once the answer is sent.
        const body = await response.arrayBuffer();
        answeredBy.push(tessera.tokenAnswers.get(requestId)?.answeredBy);
        tessera.tokenAnswers.delete(requestId);
        return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
      }
      return response;
    };
    return { config, answeredBy };
  }

  /** A refresh as the direct path takes it, and one that names the resource (left to oidc-provider). */
  const PATHS: Array<[string, Record<string, string>]> = [
    ['as the direct path takes it', {}],
    ['naming the resource, through oidc-provider', { resource: OPAQUE_API }],
  ];
  const pathOf = (params: Record<string, string>) => (params.resource ? 'oidc-provider' : directPath(tessera));
  const tokensOf = (answer: oidc.TokenEndpointResponse) => ({ access_token: answer.access_token, refresh_token: answer.refresh_token, scope: answer.scope, token_type: answer.token_type });

  it.each(PATHS)('answers a refresh retried within the reuse grace with the same tokens, and the login lives on (%s)', async (_, params) => {
    const tokens = await login('cli', 'read offline_access');
    const { config, answeredBy } = await openidClient('cli');
    const first = await oidc.refreshTokenGrant(config, tokens.refresh_token!, params);
    // The answer was lost on the network: the client sends its refresh token again, late.
    advance(graceMs() - 5000);
    const again = await oidc.refreshTokenGrant(config, tokens.refresh_token!, params);
    expect(tokensOf(again)).toEqual(tokensOf(first));
    // Its lifetime counts from the rotation (seconds of Tessera's clock, and a few of the machine's).
    const elapsed = first.expires_in! - again.expires_in!;
    expect(elapsed).toBeGreaterThanOrEqual(graceMs() / 1000 - 5);
    expect(elapsed).toBeLessThan(graceMs() / 1000 + 5);
    expect(answeredBy).toEqual([pathOf(params), pathOf(params)]);
    expect(await introspect(first.access_token)).toMatchObject({ active: true, username: 'alice' });
    expect(await introspect(first.refresh_token!)).toMatchObject({ active: true });
    const next = await oidc.refreshTokenGrant(config, first.refresh_token!, params);
    expect(next.refresh_token).not.toBe(first.refresh_token);
    expect(await introspect(next.access_token)).toMatchObject({ active: true, username: 'alice' });

    // Once the successor has been used, the old token coming back is reuse, grace or not.
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!, params)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await introspect(next.access_token)).toEqual({ active: false });
  });

  it.each(PATHS)('revokes the whole login when the rotated token comes back once the grace is over, replays or not (RFC 9700 §4.14.2) (%s)', async (_, params) => {
    const tokens = await login('cli', 'read offline_access');
    const { config, answeredBy } = await openidClient('cli');
    const first = await oidc.refreshTokenGrant(config, tokens.refresh_token!, params);
    advance(graceMs() - 1000);
    expect(tokensOf(await oidc.refreshTokenGrant(config, tokens.refresh_token!, params))).toEqual(tokensOf(first));
    // A replay does not extend the grace: it ends a grace after the rotation.
    advance(1000);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!, params)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(answeredBy).toEqual([pathOf(params), pathOf(params), 'oidc-provider']);
    expect(await introspect(first.access_token)).toEqual({ active: false });
    expect(await introspect(first.refresh_token!)).toEqual({ active: false });
    await expect(oidc.refreshTokenGrant(config, first.refresh_token!, params)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it.each<[string, number, number]>([
    ['2 at once, five times', 2, 5],
    ['50 at once', 50, 1],
  ])('gives concurrent refreshes of one token the same new tokens, whichever path takes them, and the login lives on: %s', async (_, count, rounds) => {
    const { config } = await openidClient('cli');
    // Connections opened first, so that the refreshes arrive together rather than one per handshake.
    await Promise.all(Array.from({ length: count }, () => fetch(new URL('/healthz', issuer)).then((res) => res.arrayBuffer())));
    for (let round = 0; round < rounds; round += 1) {
      const tokens = await login('cli', 'read offline_access');
      // Every other one names the resource: oidc-provider's handler and the direct grant share one rotation.
      const answers = await Promise.all(Array.from({ length: count }, (_unused, i) => oidc.refreshTokenGrant(config, tokens.refresh_token!, i % 2 ? { resource: OPAQUE_API } : {})));
      expect(new Set(answers.map((answer) => JSON.stringify(tokensOf(answer)))).size).toBe(1);
      const [answer] = answers;
      expect(await introspect(answer!.access_token)).toMatchObject({ active: true, username: 'alice' });
      const next = await oidc.refreshTokenGrant(config, answer!.refresh_token!);
      expect(await introspect(next.access_token)).toMatchObject({ active: true, username: 'alice' });
    }
  });

  it("keeps a rotation's answer for the grace only, readable only with the old refresh token, and gives it to no other client", async () => {
    const tokens = await login('cli', 'read offline_access');
    const old = tokens.refresh_token!;
    const first = await refresh({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: old });
    expect(first.status).toBe(200);
    const issued = [String(first.body.access_token), String(first.body.refresh_token)];

    const key = oidcKeys.reuseAnswer(oidcDigest(old));
    const raw = await tessera.ephemeral.get(key);
    expect(raw).not.toBeNull();
    const kept = JSON.parse(raw!) as Parameters<typeof openAnswer>[1];
    expect(Object.keys(kept).sort()).toEqual(['at', 'client', 'data', 'iv']);
    expect(openAnswer(old, kept)).toEqual(first.body);
    expect(openAnswer(issued[1]!, kept)).toBeNull();
    expect(await tessera.ephemeral.ttl(key)).toBeLessThanOrEqual(graceMs() + 5000);

    // No value in this run's store holds the new tokens as they were issued.
    const redis = new Redis(TEST_REDIS_URL);
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        for (const name of keys) {
          const type = await redis.type(name);
          const values = type === 'string' ? [String(await redis.get(name))] : type === 'set' ? await redis.smembers(name) : [];
          for (const value of values) for (const token of issued) expect(value.includes(token)).toBe(false);
        }
        cursor = next;
      } while (cursor !== '0');
    } finally {
      await redis.quit();
    }

    // Another client presenting the token is refused, and the login is not ended by it.
    const stranger = await refresh({ grant_type: 'refresh_token', client_id: 'other-cli', refresh_token: old });
    expect([stranger.status, stranger.body.error]).toEqual([400, 'invalid_grant']);
    expect(await introspect(issued[0]!)).toMatchObject({ active: true });
    const again = await refresh({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: old });
    expect([again.status, again.body.access_token, again.body.refresh_token]).toEqual([200, ...issued]);
  });

  it('never writes a refresh token or an access token into the log', () => {
    expect(tessera.logs.text).not.toMatch(/"(access|refresh)_token"/);
  });
});

describe('refresh_token with the reuse grace off (TESSERA_REFRESH_REUSE_GRACE_SECONDS=0)', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let issuer: URL;

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    issuer = new URL(`http://127.0.0.1:${port}`);
    tessera = await startTestTessera({
      PORT: String(port),
      ISSUER: issuer.origin,
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      TESSERA_REDIS_PREFIX: prefix,
      TESSERA_DEVICE_POLL_INTERVAL: '1',
      TESSERA_REFRESH_REUSE_GRACE_SECONDS: '0',
    });
    await tessera.core.accounts.createUser({ username: 'alice', password: 'alice-password', scopes: ['read'] }, by);
    await tessera.core.clients.create({ clientId: 'cli', name: 'Repository CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it.each<[string, Record<string, string>]>([
    ['as the direct path takes it', {}],
    ['naming the resource, through oidc-provider', { resource: OPAQUE_API }],
  ])('revokes the login at once when a rotated token comes back (%s)', async (_, params) => {
    const config = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(config, { scope: 'read offline_access' });
    await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password');
    const tokens = await oidc.pollDeviceAuthorizationGrant(config, start);
    const first = await oidc.refreshTokenGrant(config, tokens.refresh_token!, params);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!, params)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(config, first.refresh_token!, params)).rejects.toMatchObject({ error: 'invalid_grant' });
    // Nothing is kept for a grace.
    expect(await tessera.ephemeral.get(oidcKeys.reuseAnswer(oidcDigest(tokens.refresh_token!)))).toBeNull();
  });
});
