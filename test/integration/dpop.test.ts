import { beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { createOidcAdapterFactory } from '../../src/oauth/adapter/oidc-adapter.ts';
import { approveDevice } from '../support/device-approval.ts';
import type { TestTessera } from '../support/start-tessera.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';

const JWT_API = 'https://records.example.org';
const by = { actor: 'test' };
const insecure = { execute: [oidc.allowInsecureRequests] };

// Sender-constrained (DPoP-bound, RFC 9449) tokens: no resource-server path of Tessera checks a
// proof yet, so a bound token would pass everywhere as a bearer token. Tessera refuses DPoP at the
// token endpoint, for opaque and JWT access tokens, client credentials, device logins and refreshes,
// and stops advertising it; a bound token already in the store is not accepted as a bearer.
describe('DPoP (sender-constrained tokens)', () => {
  const suite = tesseraForSuite(
    { TESSERA_DEVICE_POLL_INTERVAL: '1' },
    { oauth: { resources: { 'urn:tessera:api': { format: 'opaque' }, [JWT_API]: { format: 'jwt' } } } },
    { issuerOnItsPort: true },
  );
  let tessera: TestTessera;
  let issuer: URL;
  let serviceSecret: string;
  let rsSecret: string;

  beforeAll(async () => {
    ({ tessera, issuer } = suite);
    await tessera.core.accounts.createUser({ username: 'fran', password: 'fran-password-1', scopes: ['read'] }, by);
    serviceSecret = (await tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
    rsSecret = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    await tessera.core.clients.create({ clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);
  });

  const dpopRefusal = { error: 'invalid_dpop_proof', error_description: expect.stringMatching(/DPoP/) };

  it('does not advertise DPoP in its discovery document', async () => {
    const discovery = (await (await fetch(`${issuer.origin}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.dpop_signing_alg_values_supported).toBeUndefined();
  });

  it('refuses a client-credentials request with a DPoP proof, for opaque and JWT access tokens', async () => {
    const config = await oidc.discovery(issuer, 'harvester', serviceSecret, undefined, insecure);
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    for (const resource of ['urn:tessera:api', JWT_API]) {
      await expect(oidc.clientCredentialsGrant(config, { scope: 'read', resource }, { DPoP })).rejects.toMatchObject(dpopRefusal);
      // Without a proof: a bearer token, as ever.
      expect((await oidc.clientCredentialsGrant(config, { scope: 'read', resource })).token_type.toLowerCase()).toBe('bearer');
    }
  });

  it('refuses a device login and a refresh with a DPoP proof, and the refused request consumes nothing', async () => {
    const config = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), insecure);
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    for (const resource of ['urn:tessera:api', JWT_API]) {
      const start = await oidc.initiateDeviceAuthorization(config, { scope: 'read offline_access', resource });
      await approveDevice(issuer.origin, start.user_code, 'fran', 'fran-password-1');
      await expect(oidc.pollDeviceAuthorizationGrant(config, start, undefined, { DPoP })).rejects.toMatchObject(dpopRefusal);
      const tokens = await oidc.pollDeviceAuthorizationGrant(config, start);
      expect(tokens.token_type.toLowerCase()).toBe('bearer');

      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP })).rejects.toMatchObject(dpopRefusal);
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      expect(refreshed.token_type.toLowerCase()).toBe('bearer');
    }
  }, 30_000);

  it('does not accept a bound token already in the store (issued before) as a bearer token anywhere', async () => {
    const fran = (await tessera.core.accounts.findUser('fran'))!;
    const value = randomBytes(32).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    await createOidcAdapterFactory(tessera.ephemeral)('AccessToken').upsert(
      value,
      { kind: 'AccessToken', jti: value, accountId: fran.id, clientId: 'cli', scope: 'read', aud: 'urn:tessera:api', iat: now, exp: now + 600, jkt: 'kEEvs2UUMH2iY1KGBqdQ3dxmxX1v3UVdcY0ULKVqE7w' },
      600,
    );
    const introspection = await fetch(`${issuer.origin}/oauth/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`records-api:${rsSecret}`).toString('base64')}` },
      body: new URLSearchParams({ token: value }),
    });
    expect(await introspection.json()).toEqual({ active: false });
    expect((await fetch(`${issuer.origin}/auth/verify`, { headers: { authorization: `Bearer ${value}` } })).status).toBe(401);
    expect((await fetch(`${issuer.origin}/api/v1/me`, { headers: { authorization: `Bearer ${value}` } })).status).toBe(401);
  });
});
