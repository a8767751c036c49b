import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { approveDevice } from '../support/device-approval.ts';
import { HttpBrowser } from '../support/http-browser.ts';
import { documentedFetch } from '../support/documented-answers.ts';
import { launchChromium, navigate, pageProblems, seriousAccessibilityViolations, watchedContext, type PageWatch } from '../support/page-checks.ts';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { basic, FORM } from '../support/token-requests.ts';

// "Authorized logins" in Debian's chromium: a device login approved through openid-client's device
// flow is listed with its client, scopes and times, revoked with a button that says what it
// revokes, and then its refresh token is refused by openid-client and its access token by
// introspection. The person's sessions are listed and ended the same way. Checked with axe at
// 390 and 1280 px; the JSON routes answer the same data.

// Screenshots go into docs/screenshots/ with TESSERA_UPDATE_SCREENSHOTS=1, elsewhere otherwise.
const SCREENSHOTS = process.env.TESSERA_UPDATE_SCREENSHOTS === '1' ? fileURLToPath(new URL('../../docs/screenshots/', import.meta.url)) : `${tmpdir()}/tessera-screenshots-${process.pid}/`;

describe('authorized logins and sessions, in a browser', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let issuer: string;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let deviceConfig: oidc.Configuration;
  let recordsSecret: string;
  let callback: Server;
  let redirectUri: string;
  let portal: oidc.Configuration;
  const watch: PageWatch = { problems: [], policies: [] };
  const api = documentedFetch(() => tessera.url);

  beforeAll(async () => {
    callback = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('the portal'));
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
    redirectUri = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/cb`;
    db = await createTestDatabase();
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    tessera = await startTestTessera({ PORT: String(port), ISSUER: issuer, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_DEVICE_POLL_INTERVAL: '1' });
    const by = { actor: 'test' };
    await tessera.core.accounts.createUser({ username: 'curator', email: 'curator@example.org', password: 'curator-password', scopes: ['read', 'deposit:write'] }, by);
    await tessera.core.accounts.createUser({ username: 'other', password: 'other-password-1', scopes: ['read'] }, by);
    await tessera.core.clients.create({ clientId: 'repo-cli', name: 'Repository CLI', kind: 'device', scopes: ['read', 'deposit:write', 'offline_access'] }, by);
    recordsSecret = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    const portalSecret = (await tessera.core.clients.create({ clientId: 'portal', name: 'Deposit Portal', kind: 'web', redirectUris: [redirectUri], scopes: ['read', 'offline_access'] }, by)).secret!;
    portal = await oidc.discovery(new URL(issuer), 'portal', undefined, oidc.ClientSecretBasic(portalSecret), { execute: [oidc.allowInsecureRequests] });
    deviceConfig = await oidc.discovery(new URL(issuer), 'repo-cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    browser = await launchChromium();
    context = await watchedContext(browser, watch, { viewport: { width: 1280, height: 900 } });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
    await new Promise((resolve) => callback?.close(resolve));
  }, 60_000);

  const introspect = async (token: string) => {
    const response = await fetch(`${issuer}/oauth/introspect`, { method: 'POST', headers: { authorization: basic('records-api', recordsSecret), ...FORM }, body: new URLSearchParams({ token }) });
    return ((await response.json()) as { active: boolean }).active;
  };

  /** A device login through openid-client, approved on the verification pages. */
  async function deviceLogin(username: string, password: string, scope = 'read deposit:write offline_access') {
    const start = await oidc.initiateDeviceAuthorization(deviceConfig, { scope });
    await approveDevice(issuer, start.user_code, username, password);
    return oidc.pollDeviceAuthorizationGrant(deviceConfig, start);
  }

  async function signIn(page: Page) {
    await page.goto(`${issuer}/settings/logins`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.fill('#username', 'curator');
    await page.fill('#password', 'curator-password');
    await navigate(page, () => page.click('button[type=submit]'));
    expect(new URL(page.url()).pathname).toBe('/settings/logins');
  }

  it('lists a device login, revokes it, and its refresh and access tokens stop working', async () => {
    const kept = await deviceLogin('curator', 'curator-password', 'read offline_access');
    const tokens = await deviceLogin('curator', 'curator-password');
    const stranger = await deviceLogin('other', 'other-password-1', 'read offline_access');
    // A refresh: the login's last use moves past its approval.
    const refreshed = await oidc.refreshTokenGrant(deviceConfig, tokens.refresh_token!);
    expect(await introspect(refreshed.access_token)).toBe(true);

    const page = await context.newPage();
    await signIn(page);
    expect(await page.locator('h1').innerText()).toBe('Authorized logins');
    const rows = page.locator('#apps ~ .table-wrap tbody tr');
    expect(await rows.count()).toBe(2);
    const texts = await rows.allInnerTexts();
    expect(texts.join('\n')).not.toContain('other');
    expect(texts.every((t) => t.includes('Repository CLI') && t.includes('Device or command line'))).toBe(true);
    expect(texts.filter((t) => /read\s+deposit:write/.test(t))).toHaveLength(1);

    // Each button names what it revokes for screen readers, and the names tell the logins apart.
    const buttons = page.getByRole('button', { name: /^Revoke the login of Repository CLI approved \d{4}-\d\d-\d\d \d\d:\d\d UTC$/ });
    expect(await buttons.count()).toBe(2);

    // The JSON API lists the same logins; the one with deposit:write is the one to revoke.
    const listed = await api(`${issuer}/api/v1/logins`, { headers: { cookie: (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ') } });
    expect(listed.status).toBe(200);
    const { logins } = (await listed.json()) as { logins: { id: string; client_name: string; scopes: string[]; approved_at: string; last_used_at: string | null }[] };
    expect(logins).toHaveLength(2);
    const target = logins.find((l) => l.scopes.includes('deposit:write'))!;
    expect(target).toMatchObject({ client_name: 'Repository CLI', scopes: expect.arrayContaining(['read', 'deposit:write', 'offline_access']) });
    expect(Date.parse(target.last_used_at!)).toBeGreaterThanOrEqual(Date.parse(target.approved_at));

    expect(await pageProblems(page)).toEqual([]);

    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: `${SCREENSHOTS}authorized-logins.png`, fullPage: true, animations: 'disabled', caret: 'hide' });

    const row = rows.filter({ hasText: 'deposit:write' });
    await navigate(page, () => row.getByRole('button', { name: /^Revoke the login/ }).click());
    expect(await page.locator('[role=status]').innerText()).toBe('The login was revoked: its access and refresh tokens no longer work.');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().innerText()).not.toContain('deposit:write');

    // Refused everywhere: the refresh token at the token endpoint (openid-client), the access
    // tokens at introspection; the other login and the other person's keep working.
    await expect(oidc.refreshTokenGrant(deviceConfig, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await introspect(refreshed.access_token)).toBe(false);
    expect(await introspect(tokens.access_token)).toBe(false);
    expect(await introspect(kept.access_token)).toBe(true);
    expect(await introspect(stranger.access_token)).toBe(true);
    await expect(oidc.refreshTokenGrant(deviceConfig, kept.refresh_token!)).resolves.toMatchObject({ token_type: expect.stringMatching(/bearer/i) });

    // Revoking it again through the API: it is gone. The security log names the revocation.
    const again = await api(`${issuer}/api/v1/logins/${target.id}`, { method: 'DELETE', headers: { cookie: (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; '), 'x-csrf-token': await page.locator('input[name=csrf]').first().inputValue() } });
    expect(again.status).toBe(404);
    await tessera.core.audit.settled();
    await page.goto(`${issuer}/settings/security`);
    expect(await page.locator('tbody').innerText()).toMatch(/App or device login revoked[\s\S]*repo-cli/);
    await page.close();
  }, 90_000);

  it('lists a web application authorized with the code flow, and the JSON API revokes it for an API session', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const authorize = oidc.buildAuthorizationUrl(portal, { redirect_uri: redirectUri, scope: 'read offline_access', prompt: 'consent', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state });
    const http = new HttpBrowser(issuer);
    const done = await http.submit(await http.request(authorize.toString()), { username: 'curator', password: 'curator-password', decision: 'approve' });
    const tokens = await oidc.authorizationCodeGrant(portal, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: state }, { redirect_uri: redirectUri });
    expect(await introspect(tokens.access_token)).toBe(true);

    const login = await fetch(`${issuer}/users/curator/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'curator-password' }) });
    const { session } = (await login.json()) as { session: string };
    const listed = await api(`${issuer}/api/v1/logins`, { headers: { 'x-session': session } });
    const { logins } = (await listed.json()) as { logins: { id: string; client_id: string; client_kind: string; scopes: string[] }[] };
    const web = logins.find((l) => l.client_id === 'portal')!;
    expect(web).toMatchObject({ client_kind: 'web', scopes: expect.arrayContaining(['read', 'offline_access']) });

    const page = await context.newPage();
    await page.goto(`${issuer}/settings/logins`);
    expect(await page.locator('#apps ~ .table-wrap tbody tr', { hasText: 'Deposit Portal' }).innerText()).toContain('Web application');
    await page.close();

    expect((await api(`${issuer}/api/v1/logins/${web.id}`, { method: 'DELETE', headers: { 'x-session': session } })).status).toBe(204);
    expect(await introspect(tokens.access_token)).toBe(false);
    await expect(oidc.refreshTokenGrant(portal, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await api(`${issuer}/api/v1/logins/${web.id}`, { method: 'DELETE', headers: { 'x-session': session } })).status).toBe(404);
  }, 60_000);

  it('lists the sessions with this one marked, ends another, and signing out this one leads to /login', async () => {
    // An API session from a script, with its user agent.
    const login = await fetch(`${issuer}/users/curator/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'deposit-script/1.0' }, body: JSON.stringify({ password: 'curator-password' }) });
    const { session } = (await login.json()) as { session: string };
    expect((await fetch(`${issuer}/api/v1/me`, { headers: { 'x-session': session } })).status).toBe(200);

    const page = await context.newPage();
    await page.goto(`${issuer}/settings/logins`);
    const rows = page.locator('#sessions ~ .table-wrap tbody tr');
    const texts = await rows.allInnerTexts();
    expect(texts.filter((t) => t.includes('this session'))).toHaveLength(1);
    const script = rows.filter({ hasText: 'deposit-script/1.0' });
    expect(await script.count()).toBe(1);
    expect(await script.innerText()).toContain('127.0.0.1');
    expect(await page.getByRole('button', { name: /^Sign out of this session started .* UTC from 127\.0\.0\.1$/ }).count()).toBe(1);

    await navigate(page, () => script.getByRole('button', { name: /^End the session started/ }).click());
    expect(await page.locator('[role=status]').innerText()).toBe('The session was ended.');
    expect(await page.locator('#sessions ~ .table-wrap tbody tr', { hasText: 'deposit-script/1.0' }).count()).toBe(0);
    expect((await fetch(`${issuer}/api/v1/me`, { headers: { 'x-session': session } })).status).toBe(401);

    // The sign-ins at the app and device pages (one per approval above, each through a fresh
    // browser): ending one leaves the logins it approved alone.
    const signIns = page.locator('#signins ~ .table-wrap tbody tr');
    const before = await signIns.count();
    expect(before).toBeGreaterThanOrEqual(3);
    const logins = await page.locator('#apps ~ .table-wrap tbody tr').count();
    await navigate(page, () => page.getByRole('button', { name: /^End the sign-in at the app and device pages made \d{4}-\d\d-\d\d \d\d:\d\d UTC$/ }).first().click());
    expect(await page.locator('[role=status]').innerText()).toMatch(/^The sign-in was ended/);
    expect(await signIns.count()).toBe(before - 1);
    expect(await page.locator('#apps ~ .table-wrap tbody tr').count()).toBe(logins);
    expect(await seriousAccessibilityViolations(page)).toEqual([]);

    await navigate(page, () => page.getByRole('button', { name: /^Sign out of this session/ }).click());
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.goto(`${issuer}/settings/logins`);
    expect(new URL(page.url()).pathname).toBe('/login');
    expect(watch.problems).toEqual([]);
    for (const { csp } of watch.policies) expect(csp).not.toContain('unsafe-inline');
    await page.close();
  }, 60_000);
});
