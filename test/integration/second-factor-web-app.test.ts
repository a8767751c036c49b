import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { HttpBrowser } from '../support/http-browser.ts';
import { oathtoolTotp } from '../support/oathtool.ts';
import { recordSecret } from '../support/secret-ledger.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';

// A web app's authorization (code flow with PKCE, driven by openid-client) for an account with an
// authenticator app: after the password the sign-in page asks for the code, and the app gets its
// code (and tokens) only once the code (from oathtool) is right.
describe('a web app sign-in with a second factor', () => {
  const suite = tesseraForSuite({}, {}, { issuerOnItsPort: true });
  let callback: Server;
  let redirectUri: string;
  let portal: oidc.Configuration;
  let secret: string;

  beforeAll(async () => {
    callback = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('the portal'));
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
    redirectUri = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/cb`;
    const { accounts, clients, secondFactors } = suite.tessera.core;
    const user = await accounts.createUser({ username: 'alice', password: 'alice-password', scopes: ['read'] }, { actor: 'test' });
    ({ secret } = await secondFactors.beginTotp(user));
    recordSecret('totp_secret', secret);
    await secondFactors.confirmTotp(user, oathtoolTotp(secret), { ip: null, userAgent: null });
    const portalSecret = (await clients.create({ clientId: 'portal', name: 'Portal', kind: 'web', redirectUris: [redirectUri], scopes: ['read'] }, { actor: 'test' })).secret!;
    portal = await oidc.discovery(suite.issuer, 'portal', undefined, oidc.ClientSecretBasic(portalSecret), { execute: [oidc.allowInsecureRequests] });
  });
  afterAll(async () => {
    await new Promise((resolve) => callback?.close(resolve));
  });

  it('gives the app its code only after the second step', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(portal, { redirect_uri: redirectUri, scope: 'read', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state });
    const browser = new HttpBrowser(suite.issuer.origin);
    const consent = await browser.request(url.toString());
    expect(consent.html).toMatch(/Authorize Portal/);
    const step = await browser.submit(consent, { username: 'alice', password: 'alice-password', decision: 'approve' });
    expect(step.status).toBe(200);
    expect(new URL(step.url).pathname).toMatch(/^\/interaction\/[^/]+\/second-factor$/);
    expect(step.html).toMatch(/Two-step verification/);

    const wrong = await browser.submit(step, { code: '000000' });
    expect(wrong.status).toBe(401);
    expect(wrong.url).not.toContain(redirectUri);

    const done = await browser.submit(wrong, { code: oathtoolTotp(secret, Date.now() + 30_000) });
    expect(done.html).toBe('the portal');
    const returned = new URL(done.url);
    expect(returned.origin + returned.pathname).toBe(redirectUri);
    const tokens = await oidc.authorizationCodeGrant(portal, returned, { pkceCodeVerifier: verifier, expectedState: state }, { redirect_uri: redirectUri });
    expect(tokens.scope).toBe('read');
    // (The sign-in events are written in the background: wait for them.)
    await suite.tessera.core.audit.settled();
    const settled = await suite.tessera.core.database.query<{ action: string }>("SELECT action FROM audit_events WHERE action IN ('sign_in.succeeded', 'sign_in.second_factor.failed', 'sign_in.second_factor.succeeded', 'authorization.approved') ORDER BY id");
    expect(settled.rows.map((r) => r.action)).toEqual(['sign_in.succeeded', 'sign_in.second_factor.failed', 'sign_in.second_factor.succeeded', 'authorization.approved']);
  });
});
