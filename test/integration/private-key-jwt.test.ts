import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

interface KeyPair {
  privateKey: CryptoKey;
  publicJwk: JWK;
}

async function keyPair(alg: 'ES256' | 'ES384' | 'ES512' | 'EdDSA' | 'PS256', kid: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid } };
}

/**
 * Private key JWT client authentication (RFC 7523, OpenID Connect Core §9) at Tessera's token,
 * introspection and revocation endpoints, driven by openid-client as a real client would.
 */
describe('private_key_jwt client authentication on PostgreSQL and Redis', () => {
  const prefix = uniqueRedisPrefix();
  const by = { actor: 'test' };
  let db: TestDatabase;
  let tessera: TestTessera;
  let issuer: URL;
  let tokenEndpoint: URL;
  let harvesterKey: KeyPair;
  let apiKey: KeyPair;

  /** openid-client's configuration for a client authenticating with `privateKey`. */
  const discover = (clientId: string, privateKey: CryptoKey, options?: oidc.ModifyAssertionOptions) =>
    oidc.discovery(issuer, clientId, undefined, oidc.PrivateKeyJwt(privateKey, options), { execute: [oidc.allowInsecureRequests] });

  /** A client assertion signed by hand: what goes over the wire, to send it more than once. */
  const assertion = (clientId: string, privateKey: CryptoKey, alg: string, claims: { aud?: string; jti?: string; exp?: number } = {}) =>
    new SignJWT({})
      .setProtectedHeader({ alg })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(claims.aud ?? issuer.origin)
      .setJti(claims.jti ?? randomUUID())
      .setIssuedAt()
      .setExpirationTime(claims.exp ?? '60s')
      .sign(privateKey);

  const postToken = (form: Record<string, string>) =>
    fetch(tokenEndpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) }).then(async (response) => ({
      status: response.status,
      body: (await response.json()) as { access_token?: string; error?: string; error_description?: string },
    }));

  const withAssertion = (clientId: string, signed: string) => ({
    grant_type: 'client_credentials',
    client_id: clientId,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: signed,
  });

  beforeAll(async () => {
    const port = await freePort();
    issuer = new URL(`http://127.0.0.1:${port}`);
    tokenEndpoint = new URL('/oauth/token', issuer);
    db = await createTestDatabase();
    tessera = await startTestTessera({ PORT: String(port), ISSUER: issuer.origin, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix });
    harvesterKey = await keyPair('ES256', 'harvester-1');
    apiKey = await keyPair('EdDSA', 'records-api-1');
    await tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'], jwks: { keys: [harvesterKey.publicJwk] } }, by);
    await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server', jwks: { keys: [apiKey.publicJwk] } }, by);
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it('issues a client-credentials token to a service client that signs its assertion with its key', async () => {
    const harvester = await discover('harvester', harvesterKey.privateKey);
    const tokens = await oidc.clientCredentialsGrant(harvester, { scope: 'read' });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.scope).toBe('read');
    expect(tokens.access_token).toBeTruthy();
  });

  it('authenticates with each accepted key type: RSA-PSS and Ed25519 (as "Ed25519" and as "EdDSA")', async () => {
    const rsa = await keyPair('PS256', 'rsa-1');
    await tessera.core.clients.create({ clientId: 'rsa-service', name: 'RSA service', kind: 'service', jwks: { keys: [rsa.publicJwk] } }, by);
    expect((await oidc.clientCredentialsGrant(await discover('rsa-service', rsa.privateKey))).access_token).toBeTruthy();

    const ed = await keyPair('EdDSA', 'ed-1');
    await tessera.core.clients.create({ clientId: 'ed-service', name: 'Ed25519 service', kind: 'service', jwks: { keys: [ed.publicJwk] } }, by);
    expect((await oidc.clientCredentialsGrant(await discover('ed-service', ed.privateKey))).access_token).toBeTruthy();
    const asEdDSA = await discover('ed-service', ed.privateKey, {
      [oidc.modifyAssertion]: (header) => {
        header.alg = 'EdDSA';
      },
    });
    expect((await oidc.clientCredentialsGrant(asEdDSA)).access_token).toBeTruthy();
  });

  it('refuses an assertion signed with another key, and other ways of authenticating, with invalid_client', async () => {
    const stranger = await keyPair('ES256', 'harvester-1'); // even with the registered kid
    await expect(oidc.clientCredentialsGrant(await discover('harvester', stranger.privateKey))).rejects.toMatchObject({ error: 'invalid_client', status: 401 });

    // Another client's key and assertion: its iss/sub name the other client.
    const signedByApi = await assertion('records-api', apiKey.privateKey, 'EdDSA');
    expect(await postToken(withAssertion('harvester', signedByApi))).toMatchObject({ status: 400, body: { error: 'invalid_request' } }); // client_id mismatch
    // A key client has no secret to present.
    expect(await postToken({ grant_type: 'client_credentials', client_id: 'harvester', client_secret: 'tsr_cs_guess' })).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    // An assertion for the wrong audience, or already expired.
    const elsewhere = await assertion('harvester', harvesterKey.privateKey, 'ES256', { aud: 'https://elsewhere.example.org' });
    expect(await postToken(withAssertion('harvester', elsewhere))).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    const expired = await assertion('harvester', harvesterKey.privateKey, 'ES256', { exp: Math.floor(Date.now() / 1000) - 120 });
    expect(await postToken(withAssertion('harvester', expired))).toMatchObject({ status: 401, body: { error: 'invalid_client' } });

    // A secret client cannot switch to an assertion either.
    const { secret } = await tessera.core.clients.create({ clientId: 'secret-service', name: 'Secret service', kind: 'service' }, by);
    expect(secret).toBeTruthy();
    const unregistered = await assertion('secret-service', harvesterKey.privateKey, 'ES256');
    expect(await postToken(withAssertion('secret-service', unregistered))).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
  });

  it('refuses an assertion used a second time, and any other assertion with the same jti', async () => {
    const signed = await assertion('harvester', harvesterKey.privateKey, 'ES256');
    const first = await postToken(withAssertion('harvester', signed));
    expect(first.status).toBe(200);
    expect(first.body.access_token).toBeTruthy();
    const replayed = await postToken(withAssertion('harvester', signed));
    expect(replayed).toMatchObject({ status: 401, body: { error: 'invalid_client' } });

    const jti = randomUUID();
    const sameJti = await discover('harvester', harvesterKey.privateKey, {
      [oidc.modifyAssertion]: (_header, payload) => {
        payload.jti = jti;
      },
    });
    await expect(oidc.clientCredentialsGrant(sameJti)).resolves.toMatchObject({ token_type: expect.any(String) });
    await expect(oidc.clientCredentialsGrant(sameJti)).rejects.toMatchObject({ error: 'invalid_client' });

    // Many redemptions of one assertion at once: exactly one wins.
    const raced = await assertion('harvester', harvesterKey.privateKey, 'ES256');
    const results = await Promise.all(Array.from({ length: 8 }, () => postToken(withAssertion('harvester', raced))));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 401 && r.body.error === 'invalid_client')).toHaveLength(7);
  });

  it('lets a resource server authenticate with its key to introspect and revoke tokens', async () => {
    const token = (await oidc.clientCredentialsGrant(await discover('harvester', harvesterKey.privateKey))).access_token;
    const api = await discover('records-api', apiKey.privateKey);
    expect(await oidc.tokenIntrospection(api, token)).toMatchObject({ active: true, client_id: 'harvester', scope: 'read' });
    const stranger = await keyPair('EdDSA', 'records-api-1');
    await expect(oidc.tokenIntrospection(await discover('records-api', stranger.privateKey), token)).rejects.toMatchObject({ error: 'invalid_client' });
    await oidc.tokenRevocation(api, token);
    expect(await oidc.tokenIntrospection(api, token)).toEqual({ active: false });
  });

  it('accepts P-384 and P-521 keys at the token endpoint as at introspection', async () => {
    for (const alg of ['ES384', 'ES512'] as const) {
      const key = await keyPair(alg, `${alg}-1`);
      const clientId = `curve-${alg.toLowerCase()}`;
      await tessera.core.clients.create({ clientId, name: clientId, kind: 'service', scopes: ['read'], jwks: { keys: [key.publicJwk] } }, by);
      const answer = await postToken(withAssertion(clientId, await assertion(clientId, key.privateKey, alg)));
      expect(answer).toMatchObject({ status: 200, body: { access_token: expect.any(String) } });
    }
  });

  it('refuses at oidc-provider’s endpoints an assertion already used to introspect, and the other way round', async () => {
    const introspectWith = async (signed: string) =>
      (
        await fetch(new URL('/oauth/introspect', issuer), {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token: 'anything', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: signed }),
        })
      ).status;
    // records-api is a resource server: the token endpoint refuses its grant, but only after
    // authenticating it, which is what uses up the assertion there.
    const usedForIntrospection = await assertion('records-api', apiKey.privateKey, 'EdDSA');
    expect(await introspectWith(usedForIntrospection)).toBe(200);
    const afterwards = await postToken(withAssertion('records-api', usedForIntrospection));
    expect(afterwards).toMatchObject({ status: 401, body: { error: 'invalid_client' } });

    // oidc-provider's revocation endpoint first, then introspection.
    const usedForRevocation = await assertion('records-api', apiKey.privateKey, 'EdDSA');
    const revoked = await fetch(new URL('/oauth/revoke', issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: 'anything', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: usedForRevocation }),
    });
    expect(revoked.status).toBe(200);
    expect(await introspectWith(usedForRevocation)).toBe(401);
    expect(await introspectWith(await assertion('records-api', apiKey.privateKey, 'EdDSA'))).toBe(200);
  });

  it('rotates keys: the old key stops working at once and the client’s tokens are revoked', async () => {
    const api = await discover('records-api', apiKey.privateKey);
    const before = (await oidc.clientCredentialsGrant(await discover('harvester', harvesterKey.privateKey))).access_token;
    expect(await oidc.tokenIntrospection(api, before)).toMatchObject({ active: true });

    const next = await keyPair('EdDSA', 'harvester-2');
    await tessera.core.clients.rotateKeys('harvester', { keys: [next.publicJwk] }, by);
    expect(await oidc.tokenIntrospection(api, before)).toEqual({ active: false });
    await expect(oidc.clientCredentialsGrant(await discover('harvester', harvesterKey.privateKey))).rejects.toMatchObject({ error: 'invalid_client' });
    const after = (await oidc.clientCredentialsGrant(await discover('harvester', next.privateKey))).access_token;
    expect(await oidc.tokenIntrospection(api, after)).toMatchObject({ active: true, client_id: 'harvester' });
  });
});
