import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { freePort } from '../support/private-redis.ts';
import { approveDevice } from '../support/device-approval.ts';
import { HttpBrowser } from '../support/http-browser.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

const JWT_API = 'https://records.example.org';

function pkcePair() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function describeDeviceFlow(mode: 'PostgreSQL and Redis' | 'embedded (PGlite, in-process store)') {
  describe(`OAuth flows on ${mode}`, () => {
    const prefix = uniqueRedisPrefix();
    let db: TestDatabase | undefined;
    let tessera: TestTessera;
    let issuer: URL;
    let deviceConfig: oidc.Configuration;
    let dataDir: string | undefined;

    beforeAll(async () => {
      const port = await freePort();
      issuer = new URL(`http://127.0.0.1:${port}`);
      const env: Record<string, string> = { PORT: String(port), ISSUER: issuer.origin, TESSERA_DEVICE_POLL_INTERVAL: '1' };
      if (mode === 'PostgreSQL and Redis') {
        db = await createTestDatabase();
        Object.assign(env, { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix });
      } else {
        const { mkdtemp } = await import('node:fs/promises');
        const { tmpdir } = await import('node:os');
        dataDir = await mkdtemp(`${tmpdir()}/tessera-oauth-`);
        env.TESSERA_DATA_DIR = dataDir;
      }
      tessera = await startTestTessera(env, { oauth: { resources: { 'urn:tessera:api': { format: 'opaque' }, [JWT_API]: { format: 'jwt' } } } });
      const by = { actor: 'test' };
      await tessera.core.accounts.createUser({ username: 'alice', password: 'alice-password', scopes: ['read', 'deposit:write'] }, by);
      await tessera.core.clients.create({ clientId: 'cli', name: 'Repository CLI', kind: 'device', scopes: ['read', 'deposit:write', 'deposit:actions', 'offline_access'] }, by);
      deviceConfig = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      // Embedded, PGlite (WebAssembly) starts and runs every migration first: on two busy cores that
      // has taken more than the default 20 s.
    }, 60_000);
    afterAll(async () => {
      await tessera?.stop();
      await db?.drop();
      if (mode === 'PostgreSQL and Redis') await dropRedisPrefix(prefix);
      if (dataDir) await (await import('node:fs/promises')).rm(dataDir, { recursive: true, force: true });
    });

    it('runs the device flow with PKCE: login and approval on the verification page, tokens for the allowed scopes', async () => {
      const { verifier, challenge } = pkcePair();
      const start = await oidc.initiateDeviceAuthorization(deviceConfig, {
        scope: 'read deposit:write deposit:actions offline_access',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      });
      expect(start.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
      expect(start.verification_uri).toBe(`${issuer.origin}/device`);
      expect(start.verification_uri_complete).toBe(`${issuer.origin}/device?user_code=${start.user_code}`);
      expect(start.expires_in).toBe(600);
      expect(start.interval).toBe(1);

      // Before approval: authorization_pending; polling again at once: slow_down.
      const poll = () =>
        fetch(new URL('/oauth/token', issuer), {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: start.device_code, client_id: 'cli', code_verifier: verifier }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: string } }));
      expect(await poll()).toEqual({ status: 400, body: expect.objectContaining({ error: 'authorization_pending' }) });
      expect(await poll()).toEqual({ status: 400, body: expect.objectContaining({ error: 'slow_down' }) });

      const { consent, done } = await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password');
      expect(consent.html).toMatch(/Repository CLI/);
      expect(consent.html).toMatch(/Create and edit depositions/);
      expect(done.html).toMatch(/Device connected/);

      await new Promise((resolve) => setTimeout(resolve, 1100));
      const tokens = await oidc.pollDeviceAuthorizationGrant(deviceConfig, start, { code_verifier: verifier });
      expect(tokens.token_type.toLowerCase()).toBe('bearer');
      expect(tokens.expires_in).toBe(3600);
      expect(tokens.refresh_token).toBeTruthy();
      expect(tokens.scope!.split(' ').sort()).toEqual(['deposit:write', 'read']);
      const me = await fetch(new URL('/api/v1/me', issuer), { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(await me.json()).toMatchObject({ username: 'alice', credential: 'access_token', client_id: 'cli', scopes: ['read', 'deposit:write'] });
    });

    it('refuses a poll without the PKCE verifier, and a wrong one', async () => {
      const { challenge } = pkcePair();
      const start = await oidc.initiateDeviceAuthorization(deviceConfig, { scope: 'read', code_challenge: challenge, code_challenge_method: 'S256' });
      await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password');
      await expect(oidc.pollDeviceAuthorizationGrant(deviceConfig, start)).rejects.toMatchObject({ error: 'invalid_grant' });
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await expect(oidc.pollDeviceAuthorizationGrant(deviceConfig, start, { code_verifier: pkcePair().verifier })).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    it('answers access_denied after a denial, and invalid_scope for an unknown scope', async () => {
      const start = await oidc.initiateDeviceAuthorization(deviceConfig, { scope: 'read' });
      const { done } = await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password', 'deny');
      // The page after a denial says so, never that the device is connected.
      expect(done.html).toMatch(/<h1>Device not connected<\/h1>/);
      expect(done.html).toMatch(/You denied the request/);
      expect(done.html).not.toMatch(/Device connected|is now signed in|class="notice"/);
      await expect(oidc.pollDeviceAuthorizationGrant(deviceConfig, start)).rejects.toMatchObject({ error: 'access_denied' });
      await expect(oidc.initiateDeviceAuthorization(deviceConfig, { scope: 'read admin:everything' })).rejects.toMatchObject({ error: 'invalid_scope' });
    });

    it('gives `read` when no scope is asked, and no refresh token without offline_access', async () => {
      const start = await oidc.initiateDeviceAuthorization(deviceConfig, {});
      await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password');
      const tokens = await oidc.pollDeviceAuthorizationGrant(deviceConfig, start);
      expect(tokens.scope).toBe('read');
      expect(tokens.refresh_token).toBeUndefined();
    });

    it('shows the same message for a wrong code as for any other invalid one', async () => {
      const browser = new HttpBrowser(issuer.origin);
      const input = await browser.request('/device');
      const wrong = await browser.submit(input, { user_code: 'BBBB-BBBB' });
      expect(wrong.status).toBe(400);
      expect(wrong.html).toMatch(/That code did not work/);
    });

    it('rotates refresh tokens and revokes the grant when a rotated one is reused', async () => {
      const start = await oidc.initiateDeviceAuthorization(deviceConfig, { scope: 'read deposit:write offline_access' });
      await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password');
      const first = await oidc.pollDeviceAuthorizationGrant(deviceConfig, start);

      const narrowed = await oidc.refreshTokenGrant(deviceConfig, first.refresh_token!, { scope: 'read' });
      expect(narrowed.scope).toBe('read');
      expect(narrowed.refresh_token).not.toBe(first.refresh_token);
      await expect(oidc.refreshTokenGrant(deviceConfig, narrowed.refresh_token!, { scope: 'read deposit:actions' })).rejects.toMatchObject({ error: 'invalid_scope' });

      const kept = await oidc.refreshTokenGrant(deviceConfig, narrowed.refresh_token!);
      expect(kept.scope!.split(' ').sort()).toEqual(['deposit:write', 'read']);

      // Reusing a rotated refresh token: refused, and the whole grant is revoked.
      await expect(oidc.refreshTokenGrant(deviceConfig, first.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      await expect(oidc.refreshTokenGrant(deviceConfig, kept.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    it('never refreshes into scopes the user has lost, and not at all for a disabled user', async () => {
      const by = { actor: 'test' };
      await tessera.core.accounts.createUser({ username: `carol-${mode.length}`, password: 'carol-password', scopes: ['read', 'deposit:write'] }, by);
      const start = await oidc.initiateDeviceAuthorization(deviceConfig, { scope: 'read deposit:write offline_access' });
      await approveDevice(issuer.origin, start.user_code, `carol-${mode.length}`, 'carol-password');
      const tokens = await oidc.pollDeviceAuthorizationGrant(deviceConfig, start);
      expect(tokens.scope!.split(' ').sort()).toEqual(['deposit:write', 'read']);

      await tessera.core.accounts.setAllowedScopes(`carol-${mode.length}`, ['read'], by);
      const narrowed = await oidc.refreshTokenGrant(deviceConfig, tokens.refresh_token!);
      expect(narrowed.scope).toBe('read');

      await tessera.core.accounts.setDisabled(`carol-${mode.length}`, true, by);
      await expect(oidc.refreshTokenGrant(deviceConfig, narrowed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    it('rotates a refresh token once for 50 concurrent redemptions: all get the same new tokens', async () => {
      const start = await oidc.initiateDeviceAuthorization(deviceConfig, { scope: 'read offline_access' });
      await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password');
      const tokens = await oidc.pollDeviceAuthorizationGrant(deviceConfig, start);
      const results = await Promise.all(
        Array.from({ length: 50 }, () =>
          fetch(new URL('/oauth/token', issuer), {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: 'cli' }),
          }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> })),
        ),
      );
      // One rotation (single-use is atomic in the store); the others get its answer (the reuse grace).
      expect(results.map((result) => result.status)).toEqual(Array.from({ length: 50 }, () => 200));
      expect(new Set(results.map((result) => `${result.body.access_token} ${result.body.refresh_token}`)).size).toBe(1);
      expect(results[0]!.body.refresh_token).not.toBe(tokens.refresh_token);
    });

    it('revokes a refresh token and its grant (RFC 7009); unknown tokens answer 200', async () => {
      const start = await oidc.initiateDeviceAuthorization(deviceConfig, { scope: 'read offline_access' });
      await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password');
      const tokens = await oidc.pollDeviceAuthorizationGrant(deviceConfig, start);
      await oidc.tokenRevocation(deviceConfig, tokens.refresh_token!);
      await expect(oidc.refreshTokenGrant(deviceConfig, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      await expect(oidc.tokenRevocation(deviceConfig, 'no-such-token')).resolves.toBeUndefined();
    });

    it('issues client-credentials tokens, dropping offline_access and scopes the client may not have', async () => {
      const { secret } = await tessera.core.clients.create({ clientId: `svc-${mode.length}`, name: 'Indexer', kind: 'service', scopes: ['read'] }, { actor: 'test' });
      const service = await oidc.discovery(issuer, `svc-${mode.length}`, undefined, oidc.ClientSecretBasic(secret!), { execute: [oidc.allowInsecureRequests] });
      const tokens = await service.serverMetadata() && (await oidc.clientCredentialsGrant(service, { scope: 'read deposit:write offline_access' }));
      expect(tokens.scope).toBe('read');
      expect(tokens.refresh_token).toBeUndefined();
      const defaulted = await oidc.clientCredentialsGrant(service);
      expect(defaulted.scope).toBe('read');
      // client_secret_post works too, and a wrong secret is invalid_client.
      const post = await fetch(new URL('/oauth/token', issuer), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: `svc-${mode.length}`, client_secret: secret! }),
      });
      expect(post.status).toBe(200);
      const wrong = await fetch(new URL('/oauth/token', issuer), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`svc-${mode.length}:${secret}x`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials' }),
      });
      expect(wrong.status).toBe(401);
      expect(await wrong.json()).toMatchObject({ error: 'invalid_client' });
    });

    it('issues RFC 9068 JWT access tokens for a JWT resource, verifiable against the JWKS', async () => {
      await tessera.core.clients.create({ clientId: `jwt-cli-${mode.length}`, name: 'JWT CLI', kind: 'device', scopes: ['read', 'deposit:write', 'offline_access'], defaultResource: JWT_API }, { actor: 'test' });
      const config = await oidc.discovery(issuer, `jwt-cli-${mode.length}`, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      const start = await oidc.initiateDeviceAuthorization(config, { scope: 'read deposit:write' });
      await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password');
      const tokens = await oidc.pollDeviceAuthorizationGrant(config, start);
      const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', issuer));
      const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, { issuer: issuer.origin, audience: JWT_API, typ: 'at+jwt' });
      expect(protectedHeader.alg).toBe('RS256');
      expect(decodeProtectedHeader(tokens.access_token).kid).toBeTruthy();
      expect(payload).toMatchObject({ client_id: `jwt-cli-${mode.length}`, scope: 'read deposit:write' });
      expect(payload.sub).toMatch(/^[0-9a-f-]{36}$/);
      expect(typeof payload.jti).toBe('string');
      expect(payload.exp! - payload.iat!).toBe(3600);
    });

    it('advertises every endpoint in both discovery documents, with the exact issuer', async () => {
      for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
        const doc = (await (await fetch(new URL(path, issuer))).json()) as Record<string, unknown>;
        expect(doc).toMatchObject({
          issuer: issuer.origin,
          token_endpoint: `${issuer.origin}/oauth/token`,
          device_authorization_endpoint: `${issuer.origin}/oauth/device/code`,
          revocation_endpoint: `${issuer.origin}/oauth/revoke`,
          jwks_uri: `${issuer.origin}/.well-known/jwks.json`,
        });
        expect(doc.grant_types_supported).toEqual(expect.arrayContaining(['client_credentials', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code']));
        expect(doc.scopes_supported).toEqual(expect.arrayContaining(['read', 'deposit:write', 'deposit:actions', 'openid', 'offline_access']));
      }
    });
  });
}

describeDeviceFlow('PostgreSQL and Redis');
describeDeviceFlow('embedded (PGlite, in-process store)');
