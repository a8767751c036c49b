import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import { approveDevice } from '../support/device-approval.ts';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

const JWT_API = 'https://records.example.org';
const by = { actor: 'test' };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

// RFC 7009 revocation of JWT access tokens (the README: revocation always answers 200 and ends the
// login): oidc-provider refuses them as unsupported_token_type, because it does not store them.
describe('revoking a JWT access token', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  const suite = {} as { tessera: TestTessera };
  beforeAll(async () => {
    db = await createTestDatabase();
    // The issuer must be where openid-client finds it.
    const port = await freePort();
    suite.tessera = await startTestTessera(
      { PORT: String(port), ISSUER: `http://127.0.0.1:${port}`, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_DEVICE_POLL_INTERVAL: '1', TESSERA_INTROSPECTION_CACHE_TTL: '60' },
      { oauth: { resources: { 'urn:tessera:api': { format: 'opaque' }, [JWT_API]: { format: 'jwt' } } } },
    );
  });
  afterAll(async () => {
    await suite.tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  async function setUp() {
    const { tessera } = suite;
    const secrets: Record<string, string> = {};
    if (!(await tessera.core.accounts.findUser('dana'))) {
      await tessera.core.accounts.createUser({ username: 'dana', password: 'dana-password-1', scopes: ['read'] }, by);
      secrets.records = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
      secrets.harvester = (await tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'], defaultResource: JWT_API }, by)).secret!;
      secrets.other = (await tessera.core.clients.create({ clientId: 'other-service', name: 'Other', kind: 'service', scopes: ['read'] }, by)).secret!;
      await tessera.core.clients.create({ clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);
      state.secrets = secrets;
    }
    return state.secrets;
  }
  const state: { secrets: Record<string, string> } = { secrets: {} };

  async function revoke(token: string, authorization: Record<string, string>, form: Record<string, string> = {}) {
    return fetch(`${suite.tessera.url}/oauth/revoke`, { method: 'POST', headers: { ...FORM, ...authorization }, body: new URLSearchParams({ token, ...form }) });
  }

  /** What each of Tessera's answers says of the token: introspection, forward-auth, /api/v1/me. */
  async function everywhere(token: string) {
    const base = suite.tessera.url;
    const introspection = await fetch(`${base}/oauth/introspect`, { method: 'POST', headers: { ...FORM, authorization: basic('records-api', state.secrets.records!) }, body: new URLSearchParams({ token }) });
    const forwardAuth = await fetch(`${base}/auth/verify`, { headers: { authorization: `Bearer ${token}` } });
    const me = await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    return { active: ((await introspection.json()) as { active: boolean }).active, forwardAuth: forwardAuth.status, me: me.status };
  }
  const ACTIVE = { active: true, forwardAuth: 200, me: 200 };
  const ENDED = { active: false, forwardAuth: 401, me: 401 };

  it('answers 200 for a client-credentials JWT and makes it inactive everywhere, that token only', async () => {
    const secrets = await setUp();
    const config = await oidc.discovery(new URL(suite.tessera.url), 'harvester', undefined, oidc.ClientSecretBasic(secrets.harvester!), { execute: [oidc.allowInsecureRequests] });
    const jwt = (await oidc.clientCredentialsGrant(config, { scope: 'read' })).access_token;
    const sibling = (await oidc.clientCredentialsGrant(config, { scope: 'read' })).access_token;
    expect(jwt.split('.')).toHaveLength(3);
    expect(await everywhere(jwt)).toEqual(ACTIVE); // now cached

    // Another client may not revoke it: 200 (RFC 7009), and it stays active.
    expect((await revoke(jwt, { authorization: basic('other-service', secrets.other!) })).status).toBe(200);
    expect(await everywhere(jwt)).toEqual(ACTIVE);

    const answer = await revoke(jwt, { authorization: basic('harvester', secrets.harvester!) }, { token_type_hint: 'access_token' });
    expect(answer.status).toBe(200);
    expect(await answer.text()).toBe('');
    expect(await everywhere(jwt)).toEqual(ENDED);
    expect(await everywhere(sibling)).toEqual(ACTIVE);
  });

  it("ends the login of a device grant's JWT: its refresh token too", async () => {
    await setUp();
    const issuer = new URL(suite.tessera.url);
    const device = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(device, { scope: 'read offline_access', resource: JWT_API });
    await approveDevice(issuer.origin, start.user_code, 'dana', 'dana-password-1');
    const tokens = await oidc.pollDeviceAuthorizationGrant(device, start);
    expect(tokens.access_token.split('.')).toHaveLength(3);
    expect(await everywhere(tokens.access_token)).toEqual(ACTIVE);

    // A public client names itself in the form.
    const since = new Date();
    expect((await revoke(tokens.access_token, {}, { client_id: 'cli' })).status).toBe(200);
    expect(await everywhere(tokens.access_token)).toEqual(ENDED);
    await expect(oidc.refreshTokenGrant(device, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // Audited as the client's revocation of an access token that ended its login; no token in it.
    await suite.tessera.core.audit.settled();
    const dana = (await suite.tessera.core.accounts.findUserByLogin('dana'))!;
    const [event, ...more] = (await suite.tessera.core.auditQuery.page({ action: 'oauth.token_revoked', since })).events;
    expect(more).toEqual([]);
    expect(event).toMatchObject({ actor: 'client:cli', subject: `user:${dana.id}`, details: { kind: 'access_token', clientId: 'cli', userId: dana.id, grantRevoked: true, grantId: expect.any(String) } });
    expect(JSON.stringify(event)).not.toContain(tokens.access_token.split('.')[2]);
  }, 30_000);

  it('answers 200 for a JWT it did not sign, and for garbage shaped like one', async () => {
    const secrets = await setUp();
    for (const token of ['eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln', 'a.b.c']) {
      expect((await revoke(token, { authorization: basic('harvester', secrets.harvester!) })).status).toBe(200);
    }
  });
});
