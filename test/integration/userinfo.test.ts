import { beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import { approveDevice } from '../support/device-approval.ts';
import type { TestTessera } from '../support/start-tessera.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';

// Tessera issues ID tokens (a login granted `openid`), so it is an OpenID provider: its discovery
// document names a UserInfo endpoint, and every endpoint the document names answers.

const by = { actor: 'test' };
const OPAQUE_API = 'urn:tessera:api';
const JWT_API = 'https://records.example.org';

describe('OpenID Connect discovery and UserInfo', () => {
  const suite = tesseraForSuite(
    { TESSERA_DEVICE_POLL_INTERVAL: '1' },
    { oauth: { resources: { [OPAQUE_API]: { format: 'opaque' }, [JWT_API]: { format: 'jwt' } }, defaultResource: OPAQUE_API } },
    { issuerOnItsPort: true },
  );
  let tessera: TestTessera;
  let issuer: URL;
  let aliceId: string;

  /** A device login of alice's through the verification pages, with openid-client. */
  async function login(clientId: string, scope: string) {
    const config = await oidc.discovery(issuer, clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(config, { scope });
    await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password');
    return { config, tokens: await oidc.pollDeviceAuthorizationGrant(config, start) };
  }
  const userinfo = (init: RequestInit) => fetch(new URL('/oauth/userinfo', issuer), init);

  beforeAll(async () => {
    ({ tessera, issuer } = suite);
    aliceId = (await tessera.core.accounts.createUser({ username: 'alice', password: 'alice-password', scopes: ['read'] }, by)).id;
    await tessera.core.clients.create({ clientId: 'oidc-cli', name: 'OpenID CLI', kind: 'device', scopes: ['openid', 'read'] }, by);
    await tessera.core.clients.create({ clientId: 'cli', name: 'Plain CLI', kind: 'device', scopes: ['read'] }, by);
    await tessera.core.clients.create({ clientId: 'jwt-cli', name: 'OpenID CLI with JWTs', kind: 'device', scopes: ['openid', 'read'], defaultResource: JWT_API }, by);
  });

  it('discovery names the UserInfo endpoint beside the openid scope', async () => {
    const doc = (await (await fetch(new URL('/.well-known/openid-configuration', issuer))).json()) as Record<string, unknown>;
    expect(doc.scopes_supported).toContain('openid');
    expect(doc.userinfo_endpoint).toBe(new URL('/oauth/userinfo', issuer).href);
  });

  it('every endpoint discovery names answers at its method (no 404, no 405)', async () => {
    const doc = (await (await fetch(new URL('/.well-known/openid-configuration', issuer))).json()) as Record<string, unknown>;
    const named = Object.entries(doc).filter(([key, value]) => /_(endpoint|uri)$/.test(key) && typeof value === 'string') as [string, string][];
    expect(named.map(([key]) => key).sort()).toEqual(['authorization_endpoint', 'device_authorization_endpoint', 'introspection_endpoint', 'jwks_uri', 'revocation_endpoint', 'token_endpoint', 'userinfo_endpoint']);
    for (const [key, url] of named) {
      expect([key, new URL(url).origin]).toEqual([key, issuer.origin]);
      let res = await fetch(url);
      if (res.status === 405) res = await fetch(url, { method: res.headers.get('allow')!.split(', ')[0] });
      expect([key, [404, 405].includes(res.status) || res.status >= 500]).toEqual([key, false]);
    }
  });

  it("openid-client's UserInfo request answers the claims of the login's ID token", async () => {
    const { config, tokens } = await login('oidc-cli', 'openid read');
    const idToken = tokens.claims()!;
    expect(idToken.sub).toBe(aliceId);
    const claims = await oidc.fetchUserInfo(config, tokens.access_token, idToken.sub);
    expect(claims).toEqual({ sub: aliceId, preferred_username: 'alice' });
    // RFC 6750 §2.2: the token may come in a form instead.
    const posted = await userinfo({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ access_token: tokens.access_token }) });
    expect([posted.status, await posted.json()]).toEqual([200, { sub: aliceId, preferred_username: 'alice' }]);
    expect(posted.headers.get('cache-control')).toBe('no-store');
  });

  it('a JWT access token of such a login answers too', async () => {
    const { config, tokens } = await login('jwt-cli', 'openid read');
    expect(tokens.access_token.split('.')).toHaveLength(3);
    expect(await oidc.fetchUserInfo(config, tokens.access_token, aliceId)).toEqual({ sub: aliceId, preferred_username: 'alice' });
  });

  it('refuses a login that was not granted openid (403 insufficient_scope), an unknown token (401) and none (400)', async () => {
    const { tokens } = await login('cli', 'read');
    const plain = await userinfo({ headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect([plain.status, await plain.json()]).toEqual([403, { error: 'insufficient_scope', error_description: 'access token missing openid scope' }]);
    expect(plain.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="insufficient_scope", scope="openid"');

    const unknown = await userinfo({ headers: { authorization: 'Bearer not-a-token' } });
    expect([unknown.status, await unknown.json()]).toEqual([401, { error: 'invalid_token', error_description: 'invalid token provided' }]);
    expect(unknown.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="invalid_token"');

    const none = await userinfo({});
    expect([none.status, await none.json()]).toEqual([400, { error: 'invalid_request', error_description: 'no access token provided' }]);
  });

  it('a client-credentials token is no person: 401 invalid_token', async () => {
    const { secret } = await tessera.core.clients.create({ clientId: 'svc', name: 'Service', kind: 'service', scopes: ['read'] }, by);
    const issued = await fetch(new URL('/oauth/token', issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`svc:${secret}`).toString('base64')}` },
      body: 'grant_type=client_credentials&scope=read',
    });
    const { access_token: token } = (await issued.json()) as { access_token: string };
    const res = await userinfo({ headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(401);
  });

  it('other methods: 405 with Allow in the OAuth shape', async () => {
    const res = await userinfo({ method: 'PUT' });
    expect([res.status, res.headers.get('allow'), await res.json()]).toEqual([405, 'GET, HEAD, POST', { error: 'invalid_request', error_description: 'PUT is not allowed here; use GET, HEAD, POST' }]);
  });
});
