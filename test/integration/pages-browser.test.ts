import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Router } from 'express';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { createApp } from '../../src/http/app.ts';
import { compileTrustProxy } from '../../src/http/trust-proxy.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createBrandRoutes } from '../../src/routes/brand-routes.ts';
import { createHomeRoutes } from '../../src/routes/home-routes.ts';
import type { CallerAuthenticator } from '../../src/routes/settings/caller.ts';
import { StoreUnavailableError } from '../../src/shared/errors.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { STYLESHEET } from '../../src/views/stylesheet.ts';
import { STYLESHEET_PATH } from '../../src/views/html.ts';
import { documentedFetch } from '../support/documented-answers.ts';
import { launchChromium, navigate, pageProblems, watchedContext, type PageWatch } from '../support/page-checks.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { LogCapture, startTestTessera, type TestTessera } from '../support/start-tessera.ts';

// The pages of issue 23 item 6 in Debian's chromium, under an operator's branding (a product name,
// a logo file, colours, support links): the start page, the error pages a browser gets instead of
// JSON (403 on a stale form, 404, 405, 413, 429, 500, 503), the settings after Post/Redirect/Get
// (a reload creates no second token: counted through the API), a refused form that keeps what was
// typed and marks its fields, Revoke links that name their token, and a denied device login. Each
// page is checked at 1280 and 390 px: no sideways scrolling, no serious or critical axe violation.

const BRAND = { productName: 'Zenodo Sign-in', primaryColor: '#0b5394', accentColor: '#f1c232', supportUrl: 'https://support.example.org/help', supportEmail: 'support@example.org' };
const API_LIMIT = 60;

describe('branded pages in a browser', () => {
  const prefix = uniqueRedisPrefix();
  const dir = mkdtempSync(join(tmpdir(), 'tessera-brand-'));
  const logoFile = join(dir, 'logo.svg');
  let db: TestDatabase;
  let tessera: TestTessera;
  let browser: Browser | undefined;
  const watch: PageWatch = { problems: [], policies: [] };
  const api = documentedFetch(() => tessera.url);
  const url = (path: string) => `${tessera.url}${path}`;

  beforeAll(async () => {
    writeFileSync(logoFile, '<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><rect width="28" height="28" fill="#0b5394"/></svg>');
    db = await createTestDatabase();
    tessera = await startTestTessera(
      { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_API_REQUESTS_PER_IP_PER_MINUTE: String(API_LIMIT) },
      { branding: { ...BRAND, logoFile } },
    );
    await tessera.core.accounts.createUser({ username: 'archivist', email: 'archivist@example.org', password: 'archivist-password', scopes: ['read', 'deposit:write'] }, { actor: 'test' });
    await tessera.core.accounts.createUser({ username: 'keeper', password: 'keeper-password-1', scopes: ['read', 'admin'] }, { actor: 'test' });
    await tessera.core.clients.create({ clientId: 'lab-cli', name: 'Lab CLI', kind: 'device', scopes: ['read', 'offline_access'] }, { actor: 'test' });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const newContext = (): Promise<BrowserContext> => watchedContext(browser!, watch, { viewport: { width: 1280, height: 900 } });

  /** The page as it is now, at 1280 and at 390 px: no sideways scrolling, no serious axe violation. */
  async function checkWidths(page: Page, label: string): Promise<void> {
    expect({ label, problems: await pageProblems(page) }).toEqual({ label, problems: [] });
  }

  /** A computed style of the element (run in the page). */
  const computed = (locator: Locator, property: string) =>
    locator.evaluate((element, name) => (globalThis as unknown as { getComputedStyle(e: unknown): Record<string, string> }).getComputedStyle(element)[name], property);

  /** The operator's branding on the page: title, header with logo, colours, support link. */
  async function expectBranded(page: Page): Promise<void> {
    expect(await page.title()).toMatch(/ · Zenodo Sign-in$/);
    expect(await page.locator('header .brand').innerText()).toBe('Zenodo Sign-in');
    expect(await page.locator('header .brand img').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
    expect(await page.locator('footer a[href="https://support.example.org/help"]').count()).toBe(1);
    expect(await computed(page.locator('header.bar'), 'borderBottomColor')).toBe('rgb(241, 194, 50)');
  }

  /** Signs in through /login in `page`. */
  async function signIn(page: Page, username: string, password: string): Promise<void> {
    await page.goto(url('/login'));
    await page.fill('#username', username);
    await page.fill('#password', password);
    await navigate(page, () => page.click('button[type=submit]'));
  }

  /** The archivist's tokens, as the API lists them. */
  async function tokenNames(): Promise<string[]> {
    const login = await api(url('/users/archivist/login'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'archivist-password' }) });
    const { session } = (await login.json()) as { session: string };
    const listed = await api(url('/api/v1/tokens'), { headers: { 'x-session': session } });
    expect(listed.status).toBe(200);
    return ((await listed.json()) as { tokens: { name: string; revoked?: boolean }[] }).tokens.map((t) => t.name);
  }

  it('shows the start page and the 404 and 405 pages in the branding, while JSON clients keep JSON', async () => {
    const context = await newContext();
    const page = await context.newPage();

    const landing = await page.goto(url('/'));
    expect(landing!.status()).toBe(200);
    expect(await page.locator('h1').innerText()).toBe('Zenodo Sign-in');
    expect(await page.locator('main a[href="/login"]').innerText()).toBe('Sign in');
    expect(await page.locator('main a[href="/docs/api"]').count()).toBe(1);
    expect(await page.locator('main a[href="https://support.example.org/help"]').count()).toBe(1);
    await expectBranded(page);
    // The primary colour is the buttons' (white on it: the configuration refuses a colour too light for that).
    expect(await computed(page.locator('main a.button').first(), 'backgroundColor')).toBe('rgb(11, 83, 148)');
    await checkWidths(page, 'landing');

    const missing = await page.goto(url('/no/such/page'));
    expect(missing!.status()).toBe(404);
    expect(missing!.headers()['content-type']).toMatch(/^text\/html/);
    expect(await page.locator('h1').innerText()).toBe('Page not found');
    expect(await page.content()).not.toContain('No route for');
    await expectBranded(page);
    await checkWidths(page, '404');

    // A method the path does not take (a browser only sends one when something is wrong: forced here).
    await page.route(url('/docs/api'), (route) => route.continue({ method: 'DELETE' }));
    const notAllowed = await page.goto(url('/docs/api'));
    await page.unroute(url('/docs/api'));
    expect(notAllowed!.status()).toBe(405);
    expect(notAllowed!.headers().allow).toBe('GET, HEAD');
    expect(await page.locator('h1').innerText()).toBe('Not available this way');
    await checkWidths(page, '405');

    // oidc-provider's own error page (an authorization request naming no known client), branded too.
    const oauthError = await page.goto(url('/oauth/authorize?client_id=no-such-client&response_type=code&scope=read'));
    expect(oauthError!.status()).toBe(400);
    expect(await page.locator('main code').first().innerText()).toBe('invalid_client');
    await expectBranded(page);
    await checkWidths(page, 'oauth error');

    // The same errors for API clients: JSON, whatever else they accept.
    for (const accept of ['application/json', '*/*', undefined]) {
      const json = await fetch(url('/no/such/page'), { headers: accept ? { accept } : {} });
      expect({ accept, status: json.status, type: json.headers.get('content-type') }).toEqual({ accept, status: 404, type: expect.stringMatching(/^application\/json/) });
      expect(await json.json()).toEqual({ status: 404, message: 'No route for GET /no/such/page.' });
      const unauthorized = await api(url('/api/v1/me'), { headers: accept ? { accept } : {} });
      expect({ accept, status: unauthorized.status, type: unauthorized.headers.get('content-type') }).toEqual({ accept, status: 401, type: expect.stringMatching(/^application\/json/) });
    }
    await context.close();
  }, 90_000);

  it('creates a token with Post/Redirect/Get (a reload creates no second one), keeps a refused form, and answers a stale or oversized form with a page', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await signIn(page, 'archivist', 'archivist-password');

    // Signed in, / is a home page with the way to everything.
    await page.goto(url('/'));
    expect(await page.locator('main').innerText()).toContain('Signed in as archivist');
    expect(await page.locator('main a[href="/settings/tokens"]').count()).toBe(1);
    expect(await page.locator('main a[href="/admin"]').count()).toBe(0);
    await checkWidths(page, 'home');

    await page.goto(url('/settings/tokens'));
    await page.fill('#name', 'ci-upload');
    const created = await navigate(page, () => page.click('button:has-text("Create token")'));
    expect(created.status()).toBe(200);
    expect(created.request().method()).toBe('GET');
    expect(new URL(page.url()).pathname).toBe('/settings/tokens/created');
    const token = await page.locator('#new-token').inputValue();
    expect(token).toMatch(/^tsr_pat_/);
    expect(page.url()).not.toContain(token);
    await expectBranded(page);
    await checkWidths(page, 'token created');
    expect(await tokenNames()).toEqual(['ci-upload']);

    // A reload asks for the page again: no second token, and the token is not shown again.
    const reloaded = await page.reload();
    expect(reloaded!.status()).toBe(200);
    expect(reloaded!.request().method()).toBe('GET');
    expect(await page.content()).not.toContain(token);
    expect(await page.locator('[role=status]').innerText()).toContain('was shown once and cannot be shown again');
    expect(await tokenNames()).toEqual(['ci-upload']);

    // Each Revoke link says which token it revokes, to a screen reader too.
    await page.goto(url('/settings/tokens'));
    expect(await page.getByRole('link', { name: 'Revoke token “ci-upload”' }).count()).toBe(1);
    await navigate(page, () => page.getByRole('link', { name: 'Revoke token “ci-upload”' }).click());
    expect(await page.getByRole('button', { name: 'Revoke token “ci-upload”' }).count()).toBe(1);
    await checkWidths(page, 'revoke confirmation');
    await page.goto(url('/settings/tokens'));

    // A refused form: what was typed stays, each refused field is marked and points to its message.
    await page.fill('#name', 'ci-\u202Edaolpu');
    await page.uncheck('input[name=scopes][value="read"]');
    await page.check('input[name=scopes][value="deposit:write"]');
    await page.selectOption('#expires_in_days', { index: 0 });
    const chosenExpiry = await page.locator('#expires_in_days').inputValue();
    await page.evaluate(`document.querySelector('input[name=scopes][value="deposit:write"]').value = 'deposit:everything'`);
    const refused = await navigate(page, () => page.click('button:has-text("Create token")'));
    expect(refused.status()).toBe(400);
    expect(await page.locator('#name').inputValue()).toBe('ci-\u202Edaolpu');
    expect(await page.locator('#name').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#name').getAttribute('aria-describedby')).toBe('name-error');
    expect(await page.locator('#name-error').innerText()).toContain('U+202E');
    expect(await page.locator('input[name=scopes]:checked').count()).toBe(0);
    expect(await page.locator('input[name=scopes][value="read"]').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('fieldset').getAttribute('aria-describedby')).toBe('scopes-error');
    expect(await page.locator('#scopes-error').innerText()).toContain('unknown scope');
    expect(await page.locator('#expires_in_days').inputValue()).toBe(chosenExpiry);
    expect(await page.locator('[role=alert]').innerText()).toContain('check the fields marked below');
    await checkWidths(page, 'refused token form');
    expect(await tokenNames()).toEqual(['ci-upload']);

    // The same rule through the API, for the same name.
    const login = await api(url('/users/archivist/login'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'archivist-password' }) });
    const { session } = (await login.json()) as { session: string };
    const viaApi = await api(url('/api/v1/tokens'), { method: 'POST', headers: { 'content-type': 'application/json', 'x-session': session }, body: JSON.stringify({ name: 'ci-\u2067upload', scopes: ['read'] }) });
    expect(viaApi.status).toBe(400);
    expect(((await viaApi.json()) as { errors: { field: string; message: string }[] }).errors).toEqual([
      { field: 'name', code: 'custom', message: 'must not contain U+2067 (a right-to-left or left-to-right control): such characters can make a name look like another one' },
    ]);

    // A stale form (its CSRF token no longer matches): a page that says so, and nothing created.
    await page.goto(url('/settings/tokens'));
    await page.fill('#name', 'stale');
    await page.evaluate(`document.querySelector('form[action="/settings/tokens"] input[name=csrf]').value = 'stale-form-token'`);
    const stale = await navigate(page, () => page.click('button:has-text("Create token")'));
    expect(stale.status()).toBe(403);
    expect(await page.locator('h1').innerText()).toBe('This form has expired');
    await expectBranded(page);
    await checkWidths(page, '403');

    // A form larger than the body limit: 413 as a page.
    await page.goto(url('/settings/tokens'));
    await page.evaluate(`(() => { const name = document.getElementById('name'); name.removeAttribute('maxlength'); name.value = 'x'.repeat(150000); })()`);
    const tooLarge = await navigate(page, () => page.click('button:has-text("Create token")'));
    expect(tooLarge.status()).toBe(413);
    expect(await page.locator('h1').innerText()).toBe('Too much to send');
    await checkWidths(page, '413');
    expect(await tokenNames()).toEqual(['ci-upload']);
    await context.close();
  }, 120_000);

  it('says a denied device login was denied, and a code that did not work reads plainly', async () => {
    const started = (await (
      await fetch(url('/oauth/device/code'), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'lab-cli', scope: 'read' }) })
    ).json()) as { user_code: string };
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(url('/device'));
    await page.fill('#user_code', 'BCDF-GHJK');
    const wrong = await navigate(page, () => page.click('button[type=submit]'));
    expect(wrong.status()).toBe(400);
    expect(await page.locator('[role=alert]').innerText()).toContain('That code did not work');
    expect(await page.locator('#user_code').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#user_code').inputValue()).toBe('BCDF-GHJK');
    await expectBranded(page);
    await checkWidths(page, 'device: wrong code');

    await page.fill('#user_code', started.user_code);
    await navigate(page, () => page.click('button[type=submit]'));
    await navigate(page, () => page.click('button[name=confirm]'));
    expect(new URL(page.url()).pathname).toMatch(/^\/interaction\//);
    await expectBranded(page);
    await checkWidths(page, 'interaction');
    await navigate(page, () => page.click('button[name=decision][value=deny]'));
    expect(await page.locator('h1').innerText()).toBe('Device not connected');
    const text = await page.locator('main').innerText();
    expect(text).toContain('You denied the request: Lab CLI was not connected to your account.');
    expect(text).not.toMatch(/Device connected|is now signed in|cancelled/);
    await expectBranded(page);
    await checkWidths(page, 'device denied');
    await context.close();
  }, 90_000);

  it('brands the admin console and the API reference', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await signIn(page, 'keeper', 'keeper-password-1');
    await page.goto(url('/'));
    expect(await page.locator('main a[href="/admin"]').count()).toBe(1);
    await page.goto(url('/admin'));
    await expectBranded(page);
    await page.goto(url('/docs/api'));
    await expectBranded(page);
    expect(await page.locator('h1').innerText()).toMatch(/^Zenodo Sign-in API reference/);
    await context.close();
  }, 60_000);

  it('answers a failure (500) and an outage (503) with pages from the one error handler, and JSON clients with JSON', async () => {
    const failing = Router();
    failing.get(STYLESHEET_PATH, (_req, res) => void res.type('text/css').send(STYLESHEET));
    failing.get('/crash', () => {
      throw new Error('connect ECONNREFUSED 10.9.8.7:5432 password=never-shown');
    });
    failing.get('/outage', () => {
      throw new StoreUnavailableError('Redis', 'Redis did not answer');
    });
    const app = createApp({
      config: tessera.config,
      logger: createLogger({ level: 'fatal', destination: new LogCapture() }),
      trustProxy: compileTrustProxy(tessera.config.http.trustProxy),
      apiRoutes: [{ router: createBrandRoutes({ config: tessera.config }) }, { router: failing }],
    });
    const server: Server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const context = await newContext();
    try {
      const page = await context.newPage();
      const crashed = await page.goto(`${base}/crash`);
      expect(crashed!.status()).toBe(500);
      expect(await page.locator('h1').innerText()).toBe('Something went wrong');
      expect(await page.locator('main').innerText()).toMatch(/Reference: [0-9a-f-]{36}\. If it keeps happening, contact support\./);
      expect(await page.content()).not.toMatch(/ECONNREFUSED|never-shown/);
      await expectBranded(page);
      await checkWidths(page, '500');

      const down = await page.goto(`${base}/outage`);
      expect(down!.status()).toBe(503);
      expect(down!.headers()['retry-after']).toBe('5');
      expect(await page.locator('[role=alert]').innerText()).toContain('Try again in 5 seconds.');
      await checkWidths(page, '503');

      for (const [path, status] of [['/crash', 500], ['/outage', 503]] as const) {
        const json = await fetch(`${base}${path}`, { headers: { accept: 'application/json' } });
        expect({ status: json.status, type: json.headers.get('content-type') }).toEqual({ status, type: expect.stringMatching(/^application\/json/) });
      }
    } finally {
      await context.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 60_000);

  it('keeps the pages clean under axe with the lightest primary colour the configuration accepts', async () => {
    // #717171: 4.55:1 with the page background (the configuration's boundary; #727272 is refused).
    const config = loadConfig({ env: {}, overrides: { branding: { productName: 'Edge Case', primaryColor: '#717171', supportUrl: 'https://support.example.org/help', supportEmail: 'support@example.org' } } });
    const pages = Router();
    pages.get(STYLESHEET_PATH, (_req, res) => void res.type('text/css').send(STYLESHEET));
    // The start page as a visitor sees it (nobody is signed in to this app).
    const app = createApp({
      config,
      logger: createLogger({ level: 'fatal', destination: new LogCapture() }),
      trustProxy: compileTrustProxy(config.http.trustProxy),
      apiRoutes: [{ router: createBrandRoutes({ config }) }, { router: pages }, { router: createHomeRoutes({ callers: { identify: async () => null } as unknown as CallerAuthenticator }) }],
    });
    const server: Server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const context = await newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${base}/`);
      expect(await computed(page.locator('main a.button').first(), 'backgroundColor')).toBe('rgb(113, 113, 113)');
      expect(await computed(page.locator('footer a').first(), 'color')).toBe('rgb(113, 113, 113)');
      await checkWidths(page, 'landing, boundary colour');
      await page.goto(`${base}/nowhere`);
      await checkWidths(page, '404, boundary colour');
    } finally {
      await context.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 60_000);

  it('answers a browser that made too many requests with a page saying when to try again', async () => {
    // The API's allowance per address, used up (the browser comes from the same address).
    let limited: Response | undefined;
    for (let i = 0; i <= API_LIMIT && !limited; i++) {
      const res = await fetch(url('/api/v1/me'), { headers: { accept: 'application/json' } });
      if (res.status === 429) limited = res;
    }
    expect(limited?.status).toBe(429);
    expect(await limited!.json()).toMatchObject({ status: 429 });
    const context = await newContext();
    const page = await context.newPage();
    const answer = await page.goto(url('/api/v1/me'));
    expect(answer!.status()).toBe(429);
    const retryAfter = Number(answer!.headers()['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(await page.locator('h1').innerText()).toBe('Too many requests');
    expect(await page.locator('[role=alert]').innerText()).toMatch(/Try again in \d+ (second|minute)s?\./);
    await expectBranded(page);
    await checkWidths(page, '429');
    await context.close();

    // Every page ran under a policy without 'unsafe-inline', and without console errors but the
    // error statuses the browser reports for the error pages themselves.
    for (const { url: at, csp } of watch.policies) {
      expect({ at, csp }).toEqual({ at, csp: expect.stringContaining("script-src 'self'") });
      expect(csp).not.toContain('unsafe-inline');
    }
    expect(watch.problems.filter((p) => !/Failed to load resource: the server responded with a status of (400|403|404|405|413|429|500|503)/.test(p))).toEqual([]);
  }, 60_000);
});
