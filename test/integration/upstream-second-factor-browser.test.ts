import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { launchChromium, navigate, pageProblems, watchedContext, type PageWatch } from '../support/page-checks.ts';
import { startUpstreamProvider, type UpstreamProvider } from '../support/upstream-provider.ts';
import { oathtoolTotp } from '../support/oathtool.ts';
import { recordSecret } from '../support/secret-ledger.ts';

// An identity provider's sign-in is a first step like a password: an account with a second factor
// passes the second step after it, on the settings sign-in and on a device approval, and nothing
// opens before. Stock oidc-provider (its development pages) is the institution's provider, codes
// come from Debian's oathtool, openid-client runs the device flow against Tessera.

const UPSTREAM_SECRET = 'upstream-client-secret-second-factor-0123456789';

describe('second step after a sign-in through an identity provider, in a browser', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let upstream: UpstreamProvider;
  let browser: Browser | undefined;
  let issuer: string;
  let totpSecret = '';
  let recoveryCodes: string[] = [];
  const watch: PageWatch = { problems: [], policies: [] };

  beforeAll(async () => {
    upstream = await startUpstreamProvider({ ada: { preferred_username: 'ada.lovelace', email: 'ada@uni.example.org', email_verified: true } });
    db = await createTestDatabase();
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    upstream.register({ clientId: 'tessera', clientSecret: UPSTREAM_SECRET, redirectUri: `${issuer}/login/uni/callback` });
    recordSecret('upstream_client_secret', UPSTREAM_SECRET);
    tessera = await startTestTessera(
      { PORT: String(port), ISSUER: issuer, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix },
      { identityProviders: [{ id: 'uni', name: 'University Login', issuer: upstream.issuer, clientId: 'tessera', clientSecret: UPSTREAM_SECRET, scopes: ['openid', 'email', 'profile'] }] },
    );
    await tessera.core.clients.create({ clientId: 'cli', name: 'Repository CLI', kind: 'device', scopes: ['read'] }, { actor: 'test' });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await tessera?.stop();
    await upstream?.close();
    await db?.drop();
    await dropRedisPrefix(prefix);
  }, 60_000);

  const url = (path: string) => `${issuer}${path}`;
  const newContext = (): Promise<BrowserContext> => watchedContext(browser!, watch, { viewport: { width: 1280, height: 900 } });
  const cookieNames = async (context: BrowserContext) => (await context.cookies()).map((cookie) => cookie.name);

  /** axe (no serious or critical violation) and no sideways scrolling, on a phone and a desktop. */
  const checkPage = async (page: Page) => expect(await pageProblems(page)).toEqual([]);

  /** At the provider's development pages: any password, then Continue. */
  async function atProvider(page: Page) {
    await page.waitForURL((u) => u.href.startsWith(upstream.issuer));
    await page.fill('input[name="login"]', 'ada');
    await page.fill('input[name="password"]', 'anything');
    await navigate(page, () => page.click('button[type="submit"]'));
    await page.waitForSelector('button:has-text("Continue")');
    return navigate(page, () => page.click('button:has-text("Continue")'));
  }

  it('lets the account made at the first sign-in turn on an authenticator app', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(url('/login?next=/settings/two-factor'));
    await navigate(page, () => page.click('a:has-text("Sign in with University Login")'));
    await atProvider(page);
    expect(new URL(page.url()).pathname).toBe('/settings/two-factor');
    await navigate(page, () => page.click('button:has-text("Set up an authenticator app")'));
    totpSecret = (await page.locator('#totp-key').inputValue()).replace(/\s/g, '');
    recordSecret('totp_secret', totpSecret);
    await page.fill('#code', oathtoolTotp(totpSecret));
    const turnedOn = await navigate(page, () => page.click('button:has-text("Turn on")'));
    expect(turnedOn.status()).toBe(201);
    recoveryCodes = await page.locator('ul.recovery-codes code').allInnerTexts();
    for (const code of recoveryCodes) recordSecret('recovery_code', code);
    expect(recoveryCodes.length).toBeGreaterThan(1);
    await context.close();
  }, 90_000);

  it('asks for the second step after the provider at /login, and opens no session before it', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(url('/login?next=/settings/security'));
    await navigate(page, () => page.click('a:has-text("Sign in with University Login")'));
    await atProvider(page);
    expect(new URL(page.url()).pathname).toBe('/login/second-factor');
    expect(await cookieNames(context)).not.toContain('tessera_session');
    await checkPage(page);

    await page.fill('#code', '000000');
    const wrong = await navigate(page, () => page.click('button:has-text("Verify")'));
    expect(wrong.status()).toBe(401);
    expect(await cookieNames(context)).not.toContain('tessera_session');

    // The next time step's code: the set-up spent the current one.
    await page.fill('#code', oathtoolTotp(totpSecret, Date.now() + 30_000));
    await navigate(page, () => page.click('button:has-text("Verify")'));
    expect(new URL(page.url()).pathname).toBe('/settings/security');
    expect(await cookieNames(context)).toContain('tessera_session');
    await context.close();
  }, 90_000);

  it('asks for it on a device approval through the provider, then still asks for the consent', async () => {
    const cli = await oidc.discovery(new URL(issuer), 'cli', { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(cli, { scope: 'read' });
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(device.verification_uri_complete!);
    await navigate(page, () => page.click('button[type="submit"]'));
    await navigate(page, () => page.click('a:has-text("Sign in with University Login")'));
    await atProvider(page);
    expect(new URL(page.url()).pathname).toMatch(/^\/interaction\/[^/]+\/second-factor$/);
    expect(await page.locator('h1').innerText()).toBe('Two-step verification');
    await checkPage(page);

    // A recovery code (the TOTP steps of this minute are spent), once.
    await page.fill('#code', recoveryCodes[0]!);
    await navigate(page, () => page.click('button:has-text("Verify")'));
    // Passing the step signs in; it approves nothing: the consent page asks, as after any sign-in.
    await page.waitForSelector('text=Signed in as');
    expect(await page.textContent('body')).toContain('ada.lovelace');
    const early = await oidc.genericGrantRequest(cli, 'urn:ietf:params:oauth:grant-type:device_code', { device_code: device.device_code }).catch((error: unknown) => error);
    expect((early as { error?: string }).error).toBe('authorization_pending');
    await navigate(page, () => page.click('button[value="approve"]'));
    const tokens = await oidc.pollDeviceAuthorizationGrant(cli, device);
    expect(tokens.scope).toBe('read');
    const me = await fetch(url('/api/v1/me'), { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(((await me.json()) as { username: string }).username).toBe('ada.lovelace');
    await tessera.core.audit.settled();
    const passed = await tessera.core.database.query<{ details: Record<string, unknown> }>("SELECT details FROM audit_events WHERE action = 'sign_in.second_factor.succeeded' ORDER BY id");
    expect(passed.rows.map((row) => [row.details.via, row.details.method])).toEqual([
      ['browser', 'totp'],
      ['oauth', 'recovery_code'],
    ]);
    await context.close();
  }, 90_000);
});
