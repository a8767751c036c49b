import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { launchChromium, navigate, pageProblems, watchedContext, type PageWatch } from '../support/page-checks.ts';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

// Passkeys as a second factor, in Debian's chromium with its virtual authenticator (the DevTools
// WebAuthn domain) standing in for a phone or a security key, verified by @simplewebauthn/server:
// registered in the settings, used at /login and at a device approval started by openid-client,
// an answer replayed refused (its challenge was taken), removed with the password. WebAuthn takes
// no IP address as a relying party: the issuer is http://localhost:<port>.
/** Each test drives several pages and checks each with axe at two widths: minutes on a busy machine, seconds alone. */
const BROWSER_TEST_TIMEOUT_MS = 120_000;

describe('passkeys in a browser', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let issuer: URL;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  let devtools: CDPSession;
  let authenticatorId = '';
  let cli: oidc.Configuration;
  const watch: PageWatch = { problems: [], policies: [] };
  /** The passkey answers the pages posted, by path. */
  const posted: { path: string; body: string }[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    issuer = new URL(`http://localhost:${port}`);
    tessera = await startTestTessera({ PORT: String(port), ISSUER: issuer.origin, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_DEVICE_POLL_INTERVAL: '1' });
    await tessera.core.accounts.createUser({ username: 'keeper', password: 'keeper-password', scopes: ['read'] }, { actor: 'test' });
    await tessera.core.clients.create({ clientId: 'cli', name: 'Command line', kind: 'device', scopes: ['read', 'offline_access'] }, { actor: 'test' });
    cli = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    browser = await launchChromium();
    context = await watchedContext(browser, watch, { viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('request', (request) => {
      const body = request.postData();
      if (request.method() === 'POST' && body?.includes('passkey=')) posted.push({ path: new URL(request.url()).pathname, body });
    });
    // A platform authenticator that says yes at once, with user verification.
    devtools = await context.newCDPSession(page);
    await devtools.send('WebAuthn.enable');
    ({ authenticatorId } = (await devtools.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    })) as { authenticatorId: string });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  }, 60_000);

  const url = (path: string) => new URL(path, issuer).href;
  const cookieNames = async () => (await context.cookies()).map((cookie) => cookie.name);

  const checkPage = async () => expect(await pageProblems(page)).toEqual([]);

  async function passwordStep() {
    await page.goto(url('/login'));
    await page.fill('#username', 'keeper');
    await page.fill('#password', 'keeper-password');
    await navigate(page, () => page.click('button[type=submit]'));
  }

  async function signOut() {
    await navigate(page, () => page.click('nav.tabs button:has-text("Sign out")'));
    expect(new URL(page.url()).pathname).toBe('/login');
  }

  it('registers a passkey in the settings', async () => {
    await passwordStep();
    expect(new URL(page.url()).pathname).toBe('/settings/tokens');
    await page.goto(url('/settings/two-factor'));
    expect(await page.locator('#passkeys ~ p').first().innerText()).toBe('None yet.');
    await checkPage();
    await page.fill('#passkey-name', 'Laptop');
    const added = await navigate(page, () => page.click('button:has-text("Add a passkey")'));
    expect(added.status()).toBe(201);
    expect(await page.locator('[role=status]').innerText()).toBe('Passkey “Laptop” added.');
    expect(await page.locator('section[aria-labelledby=passkeys] li strong').allInnerTexts()).toEqual(['Laptop']);
    const { credentials } = (await devtools.send('WebAuthn.getCredentials', { authenticatorId })) as { credentials: unknown[] };
    expect(credentials).toHaveLength(1);
    const { rows } = await tessera.core.database.query<{ name: string }>('SELECT name FROM passkey_credentials');
    expect(rows).toEqual([{ name: 'Laptop' }]);
  }, BROWSER_TEST_TIMEOUT_MS);

  it('signs in at /login with the passkey as the second step', async () => {
    await signOut();
    await passwordStep();
    expect(new URL(page.url()).pathname).toBe('/login/second-factor');
    expect(await cookieNames()).not.toContain('tessera_session');
    await checkPage();
    await navigate(page, () => page.click('button:has-text("Use a passkey")'));
    expect(new URL(page.url()).pathname).toBe('/settings/tokens');
    expect(await cookieNames()).toContain('tessera_session');
  }, BROWSER_TEST_TIMEOUT_MS);

  it('refuses a passkey answer sent again: its challenge was taken', async () => {
    const replayed = posted.find((p) => p.path === '/login/second-factor')!;
    expect(replayed).toBeDefined();
    await signOut();
    await passwordStep();
    const answer = new URLSearchParams(replayed.body).get('passkey')!;
    const refused = await navigate(page, () => page.evaluate(`document.getElementById('passkey-answer').value = ${JSON.stringify(answer)}; document.getElementById('passkey-form').submit();`));
    expect(refused.status()).toBe(401);
    expect(new URL(page.url()).pathname).toBe('/login/second-factor');
    expect(await page.locator('[role=alert]').first().innerText()).toContain('did not verify');
    expect(await cookieNames()).not.toContain('tessera_session');
    // The real passkey still works.
    await navigate(page, () => page.click('button:has-text("Use a passkey")'));
    expect(new URL(page.url()).pathname).toBe('/settings/tokens');
  }, BROWSER_TEST_TIMEOUT_MS);

  it('approves a device login with the passkey as the second step', async () => {
    const start = await oidc.initiateDeviceAuthorization(cli, { scope: 'read' });
    await page.goto(start.verification_uri_complete!);
    await page.waitForSelector('button[name=confirm]');
    await navigate(page, () => page.click('button[name=confirm]'));
    await page.fill('#username', 'keeper');
    await page.fill('#password', 'keeper-password');
    await navigate(page, () => page.click('button[value=approve]'));
    expect(new URL(page.url()).pathname).toMatch(/^\/interaction\/[^/]+\/second-factor$/);
    await checkPage();
    await navigate(page, () => page.click('button:has-text("Use a passkey")'));
    expect(await page.content()).toMatch(/connected/i);
    const tokens = await oidc.pollDeviceAuthorizationGrant(cli, start);
    expect(tokens.access_token).toBeTruthy();
  }, BROWSER_TEST_TIMEOUT_MS);

  it('removes the passkey with the password; the password alone signs in again', async () => {
    await page.goto(url('/settings/two-factor'));
    const proof = page.locator('section[aria-labelledby=passkeys] input[name=proof]');
    await proof.fill('keeper-password');
    await navigate(page, () => page.click('button:has-text("Remove passkey “Laptop”")'));
    expect(await page.locator('[role=status]').innerText()).toBe('The passkey was removed.');
    expect(await page.locator('#passkeys ~ p').first().innerText()).toBe('None yet.');
    await signOut();
    await passwordStep();
    expect(new URL(page.url()).pathname).toBe('/settings/tokens');
    await tessera.core.audit.settled();
    const { rows } = await tessera.core.database.query<{ action: string; details: { method?: string } }>("SELECT action, details FROM audit_events WHERE action LIKE '%second_factor.%' ORDER BY id");
    expect(rows.map((r) => `${r.action} ${r.details.method}`)).toEqual([
      'second_factor.enrolled passkey',
      'sign_in.second_factor.succeeded passkey',
      'sign_in.second_factor.failed passkey',
      'sign_in.second_factor.succeeded passkey',
      'sign_in.second_factor.succeeded passkey',
      'second_factor.removed passkey',
    ]);
  }, BROWSER_TEST_TIMEOUT_MS);

  it('raised no console error and no CSP violation', () => {
    expect(watch.problems.filter((problem) => !/Failed to load resource: the server responded with a status of 401 /.test(problem))).toEqual([]);
  });
});
