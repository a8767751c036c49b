import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { approveDevice } from '../support/device-approval.ts';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { basic, directPath, introspectAs, tokenRequest } from '../support/token-requests.ts';

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
      { oauth: { resources: { [OPAQUE_API]: { format: 'opaque' }, [JWT_API]: { format: 'jwt' } }, defaultResource: OPAQUE_API } },
      { logLevel: 'debug' },
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
    // Any DPoP header is refused by Tessera itself: it issues no bound tokens (dpop.test.ts).
    const dpop = await refresh(form, { dpop: 'not-a-jwt' });
    expect([dpop.status, dpop.body.error, dpop.answeredBy]).toEqual([400, 'invalid_dpop_proof', 'tessera']);

    // None of those spent the token.
    const first = await refresh(form);
    expect([first.status, first.answeredBy]).toEqual([200, directPath(tessera)]);
    // Reuse of a spent refresh token is oidc-provider's: refused, and the whole login revoked.
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

  it('lets one of many concurrent refreshes win; the others are refused alike, whichever path answered them', async () => {
    const tokens = await login('cli', 'read offline_access');
    // Connections opened first, so that the refreshes arrive together rather than one per handshake.
    await Promise.all(Array.from({ length: 30 }, () => fetch(new URL('/healthz', issuer)).then((res) => res.arrayBuffer())));
    const answers = await Promise.all(Array.from({ length: 30 }, () => refresh({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: tokens.refresh_token! })));
    const won = answers.filter((answer) => answer.status === 200);
    const lost = answers.filter((answer) => answer.status !== 200);
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(29);
    const byTessera = lost.filter((answer) => answer.answeredBy === 'tessera');
    const byProvider = lost.filter((answer) => answer.answeredBy === 'oidc-provider');
    expect(byTessera.length + byProvider.length).toBe(29);
    if (directPath(tessera) === 'tessera') {
      // Those that read the token before the winner consumed it lost the race at the consumption.
      expect(byTessera.length).toBeGreaterThan(0);
    } else {
      expect(byProvider).toHaveLength(29);
    }
    for (const answer of lost) expect([answer.status, answer.body]).toEqual([400, { error: 'invalid_grant', error_description: 'grant request is invalid' }]);
    // The same answer, headers and all, as oidc-provider's own refusal of that token now.
    const again = await refresh({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: tokens.refresh_token! });
    expect([again.status, again.answeredBy]).toEqual([400, 'oidc-provider']);
    const raced = byTessera[0] ?? byProvider[0]!;
    expect(raced.headers).toEqual(again.headers);
    expect(raced.body).toEqual(again.body);
  });

  it('never writes a refresh token or an access token into the log', () => {
    expect(tessera.logs.text).not.toMatch(/"(access|refresh)_token"/);
  });
});
