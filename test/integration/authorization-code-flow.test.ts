import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { HttpBrowser } from '../support/http-browser.ts';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { basic, introspectAs, tokenRequest } from '../support/token-requests.ts';

// A `web` client (a portal acting for a person): the authorization code flow with PKCE through
// the sign-in page, as openid-client drives it, with a local callback standing in for the portal;
// then its refresh tokens, which stay with oidc-provider (a confidential client).

const by = { actor: 'test' };

describe('authorization code flow for web clients', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let issuer: URL;
  let callback: Server;
  let redirectUri: string;
  let portalSecret: string;
  let rs: string;
  let portal: oidc.Configuration;

  const introspect = (value: string) => introspectAs(tessera, { id: 'records-api', secret: rs }, value);

  /** alice signs in on the page the authorization URL leads to and decides; the browser ends at the callback. */
  async function signIn(url: URL, decision: 'approve' | 'deny' = 'approve', password = 'alice-password') {
    const browser = new HttpBrowser(issuer.origin);
    const page = await browser.request(url.toString());
    expect(page.status).toBe(200);
    expect(page.html).toMatch(/Authorize Portal/);
    return browser.submit(page, { username: 'alice', password, decision });
  }

  beforeAll(async () => {
    callback = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('the portal'));
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
    redirectUri = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/cb`;
    db = await createTestDatabase();
    const port = await freePort();
    issuer = new URL(`http://127.0.0.1:${port}`);
    tessera = await startTestTessera({ PORT: String(port), ISSUER: issuer.origin, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix }, {}, { logLevel: 'debug' });
    await tessera.core.accounts.createUser({ username: 'alice', password: 'alice-password', scopes: ['read', 'deposit:write'] }, by);
    rs = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    portalSecret = (await tessera.core.clients.create({ clientId: 'portal', name: 'Portal', kind: 'web', redirectUris: [redirectUri], scopes: ['read', 'deposit:write', 'offline_access'] }, by)).secret!;
    portal = await oidc.discovery(issuer, 'portal', undefined, oidc.ClientSecretBasic(portalSecret), { execute: [oidc.allowInsecureRequests] });
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
    await new Promise((resolve) => callback?.close(resolve));
  });

  it('binds the tokens of a code redeemed with a DPoP proof to its key; a confidential client\'s refresh token stays bound to its secret', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(portal, {
      redirect_uri: redirectUri,
      scope: 'read offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    const returned = new URL((await signIn(url)).url);
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const DPoP = oidc.getDPoPHandle(portal, keys);
    const tokens = await oidc.authorizationCodeGrant(portal, returned, { pkceCodeVerifier: verifier, expectedState: state }, { redirect_uri: redirectUri }, { DPoP });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    const jkt = (await introspect(tokens.access_token)).cnf as { jkt?: string } | undefined;
    expect(jkt?.jkt).toEqual(expect.any(String));
    expect(await introspect(tokens.access_token)).toMatchObject({ active: true, token_type: 'DPoP', username: 'alice' });
    // RFC 9449 §5: only a public client's refresh token is bound to the key.
    expect((await introspect(tokens.refresh_token!)).cnf).toBeUndefined();
    const refreshed = await oidc.refreshTokenGrant(portal, tokens.refresh_token!, undefined, { DPoP });
    expect(refreshed.token_type.toLowerCase()).toBe('dpop');
    expect(await introspect(refreshed.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: jkt });
  });

  it('signs a person in and gives the portal tokens for what both may have, then refreshes them', async () => {
    const started = new Date();
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(portal, {
      redirect_uri: redirectUri,
      scope: 'read deposit:write offline_access',
      // OpenID Connect's rule, which oidc-provider keeps: offline_access only with prompt=consent.
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    const done = await signIn(url);
    const returned = new URL(done.url);
    // Status and address too, so that a page answered instead of the redirect says which it was.
    expect([done.status, returned.origin + returned.pathname, done.html]).toEqual([200, redirectUri, 'the portal']);
    expect(returned.searchParams.get('state')).toBe(state);

    const tokens = await oidc.authorizationCodeGrant(portal, returned, { pkceCodeVerifier: verifier, expectedState: state }, { redirect_uri: redirectUri });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.scope!.split(' ').sort()).toEqual(['deposit:write', 'read']);
    expect(tokens.refresh_token).toBeTruthy();
    expect(await introspect(tokens.access_token)).toMatchObject({ active: true, client_id: 'portal', username: 'alice', scope: 'read deposit:write' });

    // A confidential client's refresh is oidc-provider's to answer (the direct path takes public clients only).
    const refreshed = await tokenRequest(tessera, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, { authorization: basic('portal', portalSecret) });
    expect([refreshed.status, refreshed.answeredBy]).toEqual([200, 'oidc-provider']);
    expect(await introspect(String(refreshed.body.access_token))).toMatchObject({ active: true, client_id: 'portal', username: 'alice', scope: 'read deposit:write' });
    const wrongSecret = await tokenRequest(tessera, { grant_type: 'refresh_token', refresh_token: String(refreshed.body.refresh_token) }, { authorization: basic('portal', `${portalSecret}x`) });
    expect([wrongSecret.status, wrongSecret.body.error]).toEqual([401, 'invalid_client']);
    const again = await oidc.refreshTokenGrant(portal, String(refreshed.body.refresh_token));
    expect(await introspect(again.access_token)).toMatchObject({ active: true });

    // The code is single use: a second exchange is refused, and ends everything the first one gave.
    await expect(oidc.authorizationCodeGrant(portal, returned, { pkceCodeVerifier: verifier, expectedState: state }, { redirect_uri: redirectUri })).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await introspect(again.access_token)).toEqual({ active: false });
    expect(await introspect(again.refresh_token!)).toEqual({ active: false });

    // The audit log has the sign-in, the approval and the reuse of the code, with no token in them.
    await tessera.core.audit.settled();
    const alice = (await tessera.core.accounts.findUserByLogin('alice'))!;
    const events = (await tessera.core.auditQuery.page({ userId: alice.id, since: started }, { limit: 100 })).events.reverse();
    expect(events.map((e) => [e.action, e.actor])).toEqual([
      ['sign_in.succeeded', `user:${alice.id}`],
      ['authorization.approved', `user:${alice.id}`],
      ['oauth.reuse_detected', 'client:portal'],
    ]);
    expect(events[0]!.details).toEqual({ via: 'oauth' });
    expect(events[1]!.details).toMatchObject({ clientId: 'portal', scopes: ['offline_access', 'read', 'deposit:write'], grantId: expect.any(String) });
    expect(events[2]!.details).toMatchObject({ credential: 'authorization_code', clientId: 'portal', grantId: events[1]!.details.grantId });
    const written = JSON.stringify(events);
    for (const value of [tokens.access_token, tokens.refresh_token!, String(refreshed.body.refresh_token), again.refresh_token!, returned.searchParams.get('code')!]) expect(written).not.toContain(value);
  });

  it('gives no refresh token when offline_access comes without prompt=consent', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(portal, { redirect_uri: redirectUri, scope: 'read offline_access', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'no-consent' });
    const done = await signIn(url);
    const tokens = await oidc.authorizationCodeGrant(portal, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: 'no-consent' }, { redirect_uri: redirectUri });
    expect(tokens.scope).toBe('read');
    expect(tokens.refresh_token).toBeUndefined();
  });

  it('requires PKCE of a web client', async () => {
    const url = oidc.buildAuthorizationUrl(portal, { redirect_uri: redirectUri, scope: 'read', state: oidc.randomState() });
    const browser = new HttpBrowser(issuer.origin);
    const page = await browser.request(url.toString());
    const returned = new URL(page.url);
    expect(returned.origin + returned.pathname).toBe(redirectUri);
    expect(returned.searchParams.get('error')).toBe('invalid_request');
    expect(returned.searchParams.get('error_description')).toMatch(/PKCE/);
  });

  it('tells the portal when the person denies, and gives it nothing', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(portal, { redirect_uri: redirectUri, scope: 'read', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'denied-state' });
    const done = await signIn(url, 'deny');
    const returned = new URL(done.url);
    expect(returned.searchParams.get('error')).toBe('access_denied');
    expect(returned.searchParams.get('code')).toBeNull();
  });

  it('never redirects to an address the portal did not register', async () => {
    const url = oidc.buildAuthorizationUrl(portal, { redirect_uri: 'http://127.0.0.1:1/elsewhere', scope: 'read', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });
});
