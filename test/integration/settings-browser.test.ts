import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { approveDevice } from '../support/device-approval.ts';
import { launchChromium, watchedContext, type PageWatch } from '../support/page-checks.ts';

// The settings pages in a real browser (Debian's chromium, driven by playwright-core), on the real
// PostgreSQL and Redis: sign in, create a personal access token, use it, revoke it. The pages must
// run without console errors or CSP violations, and the screenshots in docs/screenshots/ come from
// this run (with the token value blanked out).
// Screenshots are taken on every run (so the code path is exercised) but written into
// docs/screenshots/ only with TESSERA_UPDATE_SCREENSHOTS=1; otherwise into a scratch directory.
const SCREENSHOTS = process.env.TESSERA_UPDATE_SCREENSHOTS === '1' ? fileURLToPath(new URL('../../docs/screenshots/', import.meta.url)) : `${tmpdir()}/tessera-screenshots-${process.pid}/`;
const TOKEN = /^tsr_pat_[0-9A-Za-z]{38}$/;

describe('the settings pages in a browser', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let browser: Browser | undefined;
  let context: BrowserContext;
  /** Console errors (CSP violations among them), uncaught exceptions, and every page's policy. */
  const watch: PageWatch = { problems: [], policies: [] };
  const { problems, policies } = watch;

  beforeAll(async () => {
    db = await createTestDatabase();
    tessera = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix });
    await tessera.core.accounts.createUser({ username: 'archivist', email: 'archivist@example.org', password: 'archivist-password', scopes: ['read', 'deposit:write'] }, { actor: 'test' });
    browser = await launchChromium();
    context = await newContext({ viewport: { width: 1200, height: 800 } });
    mkdirSync(SCREENSHOTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  }, 60_000);

  /** A browser context whose pages report into `watch`. */
  const newContext = (options: Parameters<Browser['newContext']>[0]): Promise<BrowserContext> => watchedContext(browser!, watch, options);

  const url = (path: string) => `${tessera.url}${path}`;
  const me = (token: string) => fetch(url('/api/v1/me'), { headers: { authorization: `Bearer ${token}` } });
  const screenshot = (page: Page, name: string, fullPage = false) => page.screenshot({ path: `${SCREENSHOTS}${name}`, fullPage, animations: 'disabled', caret: 'hide' });

  /** Clicks something that submits a form or follows a link, and waits for the next document. */
  async function navigate(page: Page, click: () => Promise<void>): Promise<Response> {
    const [response] = await Promise.all([page.waitForResponse((r) => r.request().isNavigationRequest() && r.status() < 300), click()]);
    await page.waitForLoadState('load');
    return response;
  }

  it('signs in, creates a token, shows it once, and revokes it', async () => {
    const page = await context.newPage();

    // Not signed in: the settings page sends the browser to the sign-in form, and back after it.
    await page.goto(url('/settings/tokens'));
    expect(new URL(page.url()).pathname).toBe('/login');
    expect(new URL(page.url()).searchParams.get('next')).toBe('/settings/tokens');
    await page.fill('#username', 'archivist');
    await screenshot(page, 'login.png');
    await page.fill('#password', 'archivist-password');
    await navigate(page, () => page.click('button[type=submit]'));
    expect(new URL(page.url()).pathname).toBe('/settings/tokens');
    expect((await context.cookies()).map((c) => c.name)).toContain('tessera_session');
    expect(await page.locator('h1').innerText()).toBe('Personal access tokens');
    expect(await page.locator('#existing ~ p').innerText()).toBe('You have no tokens yet.');

    // A new token: read is offered checked, deposit:write is added; both carry descriptions.
    const read = page.locator('input[name=scopes][value="read"]');
    const write = page.locator('input[name=scopes][value="deposit:write"]');
    expect(await read.isChecked()).toBe(true);
    expect(await write.isChecked()).toBe(false);
    expect(await page.locator('label[for="scope-deposit:write"]').innerText()).toContain('Create and edit depositions');
    await page.fill('#name', 'Upload script');
    await write.check();
    const created = await navigate(page, () => page.click('button:has-text("Create token")'));
    // Post/Redirect/Get: the page that shows the token is a GET, its URL holds only a handle.
    expect(created.status()).toBe(200);
    expect(created.headers()['cache-control']).toBe('no-store');
    expect(new URL(page.url()).pathname).toBe('/settings/tokens/created');
    expect(await page.locator('h1').innerText()).toBe('Token created');

    // The value, shown once.
    const token = await page.locator('#new-token').inputValue();
    expect(token).toMatch(TOKEN);
    expect(await page.locator('#new-token').getAttribute('readonly')).not.toBeNull();
    const warning = await page.locator('[role=status]').innerText();
    expect(warning).toContain('Upload script');
    expect(warning).toContain('It cannot be shown again.');
    expect(await page.locator('label[for=new-token]').innerText()).toContain('read, deposit:write');
    expect(page.url()).not.toContain(token);
    expect((await context.cookies()).map((c) => c.value).join(' ')).not.toContain(token);

    // No real token in the committed screenshot.
    await page.evaluate(`document.getElementById('new-token').value = 'tsr_pat_••••••••'`);
    expect(await page.locator('#new-token').inputValue()).toBe('tsr_pat_••••••••');
    await screenshot(page, 'token-created.png');
    // The Copy button's script (served from Tessera, allowed by the CSP) runs.
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: tessera.url });
    await page.click('button[data-copy=new-token]');
    // A selector wait: waitForFunction's eval is refused by the page's CSP once it has to poll.
    await page.waitForSelector('button[data-copy=new-token]:text-is("Copied")', { timeout: 5000 });

    // The token works against the API.
    const valid = await me(token);
    expect(valid.status).toBe(200);
    const who = (await valid.json()) as { username: string; scopes: string[]; credential: string };
    expect(who).toMatchObject({ username: 'archivist', credential: 'personal_access_token' });
    expect(who.scopes).toEqual(expect.arrayContaining(['read', 'deposit:write']));

    // Back on the list: the row with its name, scopes and hint, never the value.
    const listed = await page.goto(url('/settings/tokens'));
    expect(listed!.status()).toBe(200);
    const row = page.locator('tbody tr', { hasText: 'Upload script' });
    expect(await row.count()).toBe(1);
    expect(await row.locator('td').nth(1).innerText()).toMatch(/read\s+deposit:write/);
    expect(await row.locator('td').nth(5).innerText()).toBe(`${token.slice(0, 12)}…`);
    expect(await listed!.text()).not.toContain(token);
    expect(await page.content()).not.toContain(token);
    await screenshot(page, 'settings-tokens.png');

    // The same page at phone width: readable, without sideways scrolling of the page itself (the
    // table may scroll inside its frame). Checked at the end, so the rest of the flow runs anyway.
    let phoneWidth: unknown;
    const phone = await newContext({ storageState: await context.storageState(), viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    try {
      const small = await phone.newPage();
      await small.goto(url('/settings/tokens'));
      expect(new URL(small.url()).pathname).toBe('/settings/tokens');
      phoneWidth = await small.evaluate('document.documentElement.scrollWidth');
      await screenshot(small, 'settings-tokens-phone.png', true);
    } finally {
      await phone.close();
    }

    // Revoke, with a confirmation page.
    await navigate(page, () => row.locator('a:has-text("Revoke")').click());
    expect(new URL(page.url()).pathname).toMatch(/^\/settings\/tokens\/[^/]+\/revoke$/);
    expect(await page.locator('h1').innerText()).toBe('Revoke “Upload script”?');
    await navigate(page, () => page.click('button:has-text("Revoke token")'));
    expect(await page.locator('[role=status]').innerText()).toBe('Revoked “Upload script”.');
    expect(await page.locator('tbody tr', { hasText: 'Upload script' }).count()).toBe(0);
    await page.goto(url('/settings/tokens'));
    expect(await page.locator('tbody tr', { hasText: 'Upload script' }).count()).toBe(0);

    const revoked = await me(token);
    expect(revoked.status).toBe(401);

    // The security log lists what happened.
    await page.goto(url('/settings/security'));
    const log = await page.locator('tbody').innerText();
    expect(log).toContain('token.created');
    expect(log).toContain('token.revoked');
    expect(log).toContain('session.created');
    expect(await page.content()).not.toContain(token);

    // Every page was served under a policy without 'unsafe-inline', and ran cleanly.
    const paths = policies.map((p) => new URL(p.url).pathname);
    for (const path of ['/login', '/settings/tokens', '/settings/security']) expect(paths).toContain(path);
    expect(paths.some((p) => /^\/settings\/tokens\/[^/]+\/revoke$/.test(p))).toBe(true);
    for (const { url: at, csp } of policies) {
      expect({ at, csp }).toEqual({ at, csp: expect.stringContaining("script-src 'self'") });
      expect(csp).not.toContain('unsafe-inline');
    }
    expect(problems).toEqual([]);
    expect({ phoneWidth }).toEqual({ phoneWidth: 390 });
    await page.close();
  }, 60_000);

  it("shows the user's events from every channel, readable and without sideways scrolling at 1280 and 390 px", async () => {
    const { core } = tessera;
    await core.clients.create({ clientId: 'repository-cli-with-a-rather-long-identifier', name: 'Repository CLI', kind: 'device', scopes: ['read', 'deposit:write', 'offline_access'] }, { actor: 'test' });
    // A failed API login with a long user agent, a device connected through the OAuth sign-in page.
    const longAgent = `Mozilla/5.0 (X11; Linux x86_64) ${'AppleWebKit/537.36 (KHTML, like Gecko) '.repeat(4)}Chrome/140.0.0.0 Safari/537.36`;
    const failed = await fetch(url('/users/archivist/login'), { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': longAgent }, body: JSON.stringify({ password: 'not-the-password' }) });
    expect(failed.status).toBe(401);
    const started = (await (
      await fetch(url('/oauth/device/code'), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'repository-cli-with-a-rather-long-identifier', scope: 'read deposit:write offline_access' }) })
    ).json()) as { user_code: string };
    await approveDevice(tessera.url, started.user_code, 'archivist', 'archivist-password');
    await core.audit.settled();

    const measurements: Record<string, unknown> = {};
    for (const [name, viewport] of [['desktop', { width: 1280, height: 900 }], ['phone', { width: 390, height: 844 }]] as const) {
      const sized = await newContext({ storageState: await context.storageState(), viewport, ...(name === 'phone' ? { isMobile: true, hasTouch: true } : {}) });
      try {
        const page = await sized.newPage();
        const answer = await page.goto(url('/settings/security'));
        expect(answer!.status()).toBe(200);
        const rows = page.locator('tbody tr');
        const texts = await rows.allInnerTexts();
        // Every channel, in words: the OAuth sign-in and the device it connected, the failed API login, the browser sign-in.
        expect(texts.find((t) => t.includes('Device connected'))).toMatch(/repository-cli-with-a-rather-long-identifier[\s\S]*read, deposit:write/);
        expect(texts.find((t) => t.includes('Signed in') && t.includes('sign-in page of an app or device'))).toBeDefined();
        expect(texts.find((t) => t.includes('Failed sign-in'))).toMatch(/wrong password[\s\S]*the API/);
        expect(texts.find((t) => t.includes('Signed in') && t.includes('these settings pages'))).toBeDefined();
        expect(texts.find((t) => t.includes('Access token revoked'))).toContain('Upload script');
        // The page never scrolls sideways, nor does the table inside its frame; the details and
        // the long user agent wrap within their columns.
        measurements[name] = await page.evaluate(`(() => {
          const wrap = document.querySelector('.table-wrap');
          const cells = [...document.querySelectorAll('td.wraps')];
          return {
            page: document.documentElement.scrollWidth <= window.innerWidth,
            table: wrap.scrollWidth <= wrap.clientWidth,
            cellsFit: cells.every((cell) => cell.scrollWidth <= cell.clientWidth + 1),
            wraps: cells.every((cell) => getComputedStyle(cell).whiteSpace === 'normal'),
            agentWrapped: cells.some((cell) => cell.innerText.includes('Mozilla/5.0 (X11') && cell.getBoundingClientRect().height > 3 * parseFloat(getComputedStyle(cell).fontSize) * 1.5),
          };
        })()`);
        await screenshot(page, name === 'phone' ? 'security-log-phone.png' : 'security-log.png', true);
      } finally {
        await sized.close();
      }
    }
    const fits = { page: true, table: true, cellsFit: true, wraps: true, agentWrapped: true };
    expect(measurements).toEqual({ desktop: fits, phone: fits });
    expect(problems).toEqual([]);
    for (const { csp } of policies) expect(csp).not.toContain('unsafe-inline');
  }, 60_000);
});
