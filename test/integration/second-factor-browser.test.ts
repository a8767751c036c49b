import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, navigate, pageProblems, watchedContext, type PageWatch } from '../support/page-checks.ts';
import { oathtoolTotp } from '../support/oathtool.ts';
import { recordSecret } from '../support/secret-ledger.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';

// Two-step sign-in in Debian's chromium on the real PostgreSQL and Redis: an authenticator app set
// up in the settings (codes from oathtool), the second step at /login and at a device approval
// started by openid-client's device flow (no session, no consent before it passes), a recovery
// code taken once and then refused, removal, and the operator's policy sending an account to set
// one up before it gets a session. Every page of the step is checked by axe at 390 and 1280 px.
/** Each test drives several pages and checks each with axe at two widths: minutes on a busy machine, seconds alone. */
const BROWSER_TEST_TIMEOUT_MS = 120_000;

describe('two-step sign-in in a browser', () => {
  const suite = tesseraForSuite({ TESSERA_DEVICE_POLL_INTERVAL: '1' }, { secondFactor: { requiredForScopes: ['deposit:actions'] } }, { issuerOnItsPort: true });
  let browser: Browser | undefined;
  let cli: oidc.Configuration;
  const watch: PageWatch = { problems: [], policies: [] };
  let secret = '';
  let recoveryCodes: string[] = [];

  beforeAll(async () => {
    const { accounts, clients } = suite.tessera.core;
    await accounts.createUser({ username: 'curator', password: 'curator-password', scopes: ['read'] }, { actor: 'test' });
    await accounts.createUser({ username: 'publisher', password: 'publisher-password', scopes: ['read', 'deposit:actions'] }, { actor: 'test' });
    await clients.create({ clientId: 'cli', name: 'Command line', kind: 'device', scopes: ['read', 'offline_access'] }, { actor: 'test' });
    cli = await oidc.discovery(suite.issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  const url = (path: string) => new URL(path, suite.issuer).href;
  const newContext = (): Promise<BrowserContext> => watchedContext(browser!, watch, { viewport: { width: 1280, height: 900 } });
  const cookieNames = async (context: BrowserContext) => (await context.cookies()).map((cookie) => cookie.name);

  /** axe (no serious or critical violation) and no sideways scrolling, on a phone and a desktop. */
  const checkPage = async (page: Page) => expect(await pageProblems(page)).toEqual([]);

  async function signIn(page: Page, username: string, password: string) {
    await page.goto(url('/login'));
    await page.fill('#username', username);
    await page.fill('#password', password);
    return navigate(page, () => page.click('button[type=submit]'));
  }

  it('sets up an authenticator app in the settings, confirmed by a code, with recovery codes shown once', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await signIn(page, 'curator', 'curator-password');
    expect(new URL(page.url()).pathname).toBe('/settings/tokens');
    await page.click('nav.tabs a:has-text("Two-step sign-in")');
    await page.waitForLoadState('load');
    expect(await page.locator('h1').innerText()).toBe('Two-step sign-in');
    expect(await page.locator('#app ~ p').first().innerText()).toBe('Not set up.');
    await checkPage(page);

    await navigate(page, () => page.click('button:has-text("Set up an authenticator app")'));
    expect(await page.locator('h1').innerText()).toBe('Set up an authenticator app');
    expect(await page.locator('img.qr').getAttribute('src')).toMatch(/^data:image\/svg\+xml;base64,/);
    secret = (await page.locator('#totp-key').inputValue()).replace(/\s/g, '');
    recordSecret('totp_secret', secret);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    await checkPage(page);

    // A wrong code: refused, the field marked, the same key shown again.
    await page.fill('#code', '000000');
    const refused = await navigate(page, () => page.click('button:has-text("Turn on")'));
    expect(refused.status()).toBe(400);
    expect(await page.locator('#code').getAttribute('aria-invalid')).toBe('true');
    expect((await page.locator('#totp-key').inputValue()).replace(/\s/g, '')).toBe(secret);

    await page.fill('#code', oathtoolTotp(secret));
    const turnedOn = await navigate(page, () => page.click('button:has-text("Turn on")'));
    expect(turnedOn.status()).toBe(201);
    expect(await page.locator('h1').innerText()).toBe('Two-step sign-in is on');
    recoveryCodes = await page.locator('ul.recovery-codes code').allInnerTexts();
    for (const code of recoveryCodes) recordSecret('recovery_code', code);
    expect(recoveryCodes).toHaveLength(10);
    await checkPage(page);
    await navigate(page, () => page.click('a:has-text("I have saved them")'));
    expect(await page.locator('#app ~ p').first().innerText()).toContain('Recovery codes left: 10');
    await context.close();
  }, BROWSER_TEST_TIMEOUT_MS);

  it('asks for a code after the password at /login, and opens no session before it', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(url('/settings/security'));
    await page.fill('#username', 'curator');
    await page.fill('#password', 'curator-password');
    await navigate(page, () => page.click('button[type=submit]'));
    expect(new URL(page.url()).pathname).toBe('/login/second-factor');
    expect(await cookieNames(context)).not.toContain('tessera_session');
    expect(await page.locator('h1').innerText()).toBe('Two-step verification');
    await checkPage(page);

    // Without the pending sign-in's cookie the step is nobody's: another browser is sent to /login.
    const stranger = await newContext();
    const strangerPage = await stranger.newPage();
    await strangerPage.goto(url('/login/second-factor'));
    expect(new URL(strangerPage.url()).pathname).toBe('/login');
    await stranger.close();

    await page.fill('#code', '123456');
    const wrong = await navigate(page, () => page.click('button:has-text("Verify")'));
    expect(wrong.status()).toBe(401);
    expect(await page.locator('[role=alert]').innerText()).toContain('not right');
    expect(await cookieNames(context)).not.toContain('tessera_session');

    // The next step's code: the set-up spent the current one.
    await page.fill('#code', oathtoolTotp(secret, Date.now() + 30_000));
    await navigate(page, () => page.click('button:has-text("Verify")'));
    expect(new URL(page.url()).pathname).toBe('/settings/security');
    expect(await cookieNames(context)).toContain('tessera_session');
    expect(await cookieNames(context)).not.toContain('tessera_second_factor');
    await context.close();
  }, BROWSER_TEST_TIMEOUT_MS);

  /** Starts a device login with openid-client and signs in on its approval page up to the second step. */
  async function deviceApprovalUpToSecondStep(context: BrowserContext) {
    const start = await oidc.initiateDeviceAuthorization(cli, { scope: 'read' });
    const page = await context.newPage();
    await page.goto(start.verification_uri_complete!);
    await page.waitForSelector('button[name=confirm]');
    await navigate(page, () => page.click('button[name=confirm]'));
    expect(new URL(page.url()).pathname).toMatch(/^\/interaction\//);
    await page.fill('#username', 'curator');
    await page.fill('#password', 'curator-password');
    const step = await navigate(page, () => page.click('button[value=approve]'));
    expect(step.status()).toBe(200);
    expect(await page.locator('h1').innerText()).toBe('Two-step verification');
    return { start, page };
  }

  it('asks for the second step at a device approval, takes a recovery code once, and only then grants', async () => {
    const context = await newContext();
    const { start, page } = await deviceApprovalUpToSecondStep(context);
    await checkPage(page);
    // Nothing granted yet: the device is still waiting.
    await expect(oidc.pollDeviceAuthorizationGrant(cli, start, undefined, { signal: AbortSignal.timeout(1500) })).rejects.toBeDefined();

    await page.fill('#code', '654321');
    const wrong = await navigate(page, () => page.click('button:has-text("Verify")'));
    expect(wrong.status()).toBe(401);
    await page.fill('#code', recoveryCodes[0]!);
    await navigate(page, () => page.click('button:has-text("Verify")'));
    expect(await page.content()).toMatch(/Device connected|connected/i);
    const tokens = await oidc.pollDeviceAuthorizationGrant(cli, start);
    expect(tokens.access_token).toBeTruthy();
    await context.close();

    // The same recovery code at the next approval: refused, nothing granted.
    const again = await newContext();
    const second = await deviceApprovalUpToSecondStep(again);
    await second.page.fill('#code', recoveryCodes[0]!);
    const refused = await navigate(second.page, () => second.page.click('button:has-text("Verify")'));
    expect(refused.status()).toBe(401);
    expect(await second.page.locator('[role=alert]').innerText()).toContain('used already');
    // Deny stays available on the step and ends the device login.
    await navigate(second.page, () => second.page.click('button:has-text("Deny")'));
    await expect(oidc.pollDeviceAuthorizationGrant(cli, second.start)).rejects.toMatchObject({ error: 'access_denied' });
    await again.close();
  }, BROWSER_TEST_TIMEOUT_MS);

  it('removes the app with the password, after refusing a wrong one', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await signIn(page, 'curator', 'curator-password');
    await page.fill('#code', recoveryCodes[1]!);
    await navigate(page, () => page.click('button:has-text("Verify")'));
    await page.goto(url('/settings/two-factor'));
    expect(await page.locator('#app ~ p').first().innerText()).toContain('Recovery codes left: 8');
    await page.fill('#proof', 'not-the-password');
    const refused = await navigate(page, () => page.click('button:has-text("Remove authenticator app")'));
    expect(refused.status()).toBe(401);
    expect(await page.locator('#proof').getAttribute('aria-invalid')).toBe('true');
    await page.fill('#proof', 'curator-password');
    await navigate(page, () => page.click('button:has-text("Remove authenticator app")'));
    expect(await page.locator('[role=status]').innerText()).toContain('removed');
    expect(await page.locator('#app ~ p').first().innerText()).toBe('Not set up.');
    await context.close();

    // Signing in is the password alone again.
    const after = await newContext();
    const next = await after.newPage();
    await signIn(next, 'curator', 'curator-password');
    expect(new URL(next.url()).pathname).toBe('/settings/tokens');
    await after.close();
  }, BROWSER_TEST_TIMEOUT_MS);

  it('refuses a device approval by an account the policy covers until it has a factor', async () => {
    const context = await newContext();
    const start = await oidc.initiateDeviceAuthorization(cli, { scope: 'read' });
    const page = await context.newPage();
    await page.goto(start.verification_uri_complete!);
    await page.waitForSelector('button[name=confirm]');
    await navigate(page, () => page.click('button[name=confirm]'));
    await page.fill('#username', 'publisher');
    await page.fill('#password', 'publisher-password');
    const refused = await navigate(page, () => page.click('button[value=approve]'));
    expect(refused.status()).toBe(403);
    expect(await page.locator('h1').innerText()).toBe('Set up two-step sign-in first');
    expect(await page.locator('a:has-text("your settings")').getAttribute('href')).toBe('/login?next=/settings/two-factor');
    await checkPage(page);
    // Nothing granted; Deny ends the device login.
    await navigate(page, () => page.click('button:has-text("Deny")'));
    await expect(oidc.pollDeviceAuthorizationGrant(cli, start)).rejects.toMatchObject({ error: 'access_denied' });
    await context.close();
  }, BROWSER_TEST_TIMEOUT_MS);

  it('sends an account the policy covers to set up an app before it gets a session', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await signIn(page, 'publisher', 'publisher-password');
    expect(new URL(page.url()).pathname).toBe('/login/second-factor/enrol');
    expect(await cookieNames(context)).not.toContain('tessera_session');
    expect(await page.locator('[role=status]').innerText()).toContain('must use two-step sign-in');
    await checkPage(page);
    const key = (await page.locator('#totp-key').inputValue()).replace(/\s/g, '');
    recordSecret('totp_secret', key);
    await page.fill('#code', oathtoolTotp(key));
    const done = await navigate(page, () => page.click('button:has-text("Turn on")'));
    expect(done.status()).toBe(201);
    expect(await cookieNames(context)).toContain('tessera_session');
    for (const code of await page.locator('ul.recovery-codes code').allInnerTexts()) recordSecret('recovery_code', code);
    await navigate(page, () => page.click('a:has-text("I have saved them")'));
    expect(new URL(page.url()).pathname).toBe('/settings/tokens');
    // Under the policy the last factor stays: removing it is refused, whatever the proof.
    await page.goto(url('/settings/two-factor'));
    await page.fill('#proof', 'publisher-password');
    const kept = await navigate(page, () => page.click('button:has-text("Remove authenticator app")'));
    expect(kept.status()).toBe(409);
    expect(await page.locator('#form-error').innerText()).toContain('must use two-step sign-in');
    expect(await page.locator('#app ~ p').first().innerText()).toContain('Recovery codes left: 10');
    await context.close();
  }, BROWSER_TEST_TIMEOUT_MS);

  it('raised no console error and no CSP violation, and every page had the strict policy', () => {
    // (Chromium reports each refused form's answer, a 400 or 401 asked for above, as a console error.)
    const refusals = /Failed to load resource: the server responded with a status of 40[0139] /;
    expect(watch.problems.filter((problem) => !refusals.test(problem))).toEqual([]);
    for (const { url: pageUrl, csp } of watch.policies) expect({ pageUrl, csp: csp?.includes("script-src 'self'") && !csp.includes('unsafe-inline') }).toEqual({ pageUrl, csp: true });
  });
});
