import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, navigate, pageProblems, seriousAccessibilityViolations, watchedContext, type PageWatch } from '../support/page-checks.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

// Changing one's own password in Debian's chromium: the current password is checked, the new one
// obeys the usual rules and is typed twice, a refused field is marked and described, and the
// change signs out every other session while this browser stays signed in.

describe('changing the password, in a browser', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let browser: Browser | undefined;
  let context: BrowserContext;
  const watch: PageWatch = { problems: [], policies: [] };

  beforeAll(async () => {
    db = await createTestDatabase();
    tessera = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix });
    await tessera.core.accounts.createUser({ username: 'pat', email: 'pat@example.org', password: 'first-password', scopes: ['read'] }, { actor: 'test' });
    await tessera.core.accounts.createUser({ username: 'quinn', password: 'quinn-password', scopes: ['read'] }, { actor: 'test' });
    browser = await launchChromium();
    context = await watchedContext(browser, watch, { viewport: { width: 1280, height: 900 } });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  }, 60_000);

  const url = (path: string) => `${tessera.url}${path}`;
  const apiLogin = (password: string) => fetch(url('/users/pat/login'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password }) });

  async function submit(page: Page, fields: { current: string; next: string; repeated: string }) {
    await page.fill('#current_password', fields.current);
    await page.fill('#new_password', fields.next);
    await page.fill('#new_password_again', fields.repeated);
    const [answer] = await Promise.all([page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().method() === 'POST'), page.click('button:has-text("Change password")')]);
    await page.waitForLoadState('load');
    return answer.status();
  }

  /** The field's refusal: marked invalid, described by a message. */
  async function refusal(page: Page, id: string): Promise<string> {
    const input = page.locator(`#${id}`);
    expect(await input.getAttribute('aria-invalid')).toBe('true');
    expect((await input.getAttribute('aria-describedby'))!.split(' ')).toContain(`${id}-error`);
    return page.locator(`#${id}-error`).innerText();
  }

  it('refuses a wrong current password, differing and short new ones; a change ends the other sessions only', async () => {
    const other = (await (await apiLogin('first-password')).json()) as { session: string };
    const page = await context.newPage();
    await page.goto(url('/settings/password'));
    // Without mail configured, the sign-in page offers no reset and there is none.
    expect(await page.getByRole('link', { name: 'Forgot your password?' }).count()).toBe(0);
    expect((await fetch(url('/login/forgot'))).status).toBe(404);
    await page.fill('#username', 'pat');
    await page.fill('#password', 'first-password');
    await navigate(page, () => page.click('button[type=submit]'));
    expect(new URL(page.url()).pathname).toBe('/settings/password');
    expect(await page.locator('h1').innerText()).toBe('Change password');
    expect(await pageProblems(page)).toEqual([]);

    expect(await submit(page, { current: 'not-my-password', next: 'second-password', repeated: 'second-password' })).toBe(400);
    expect(await refusal(page, 'current_password')).toBe('That is not your current password.');
    expect(await page.locator('#current_password').inputValue()).toBe('');
    expect(await seriousAccessibilityViolations(page)).toEqual([]);

    expect(await submit(page, { current: 'first-password', next: 'second-password', repeated: 'second-passwort' })).toBe(400);
    expect(await refusal(page, 'new_password_again')).toBe('The two new passwords differ.');

    expect(await submit(page, { current: 'first-password', next: 'short', repeated: 'short' })).toBe(400);
    expect(await refusal(page, 'new_password')).toMatch(/^The new password must be at least \d+ characters\.$/);
    expect((await page.locator('#new_password').getAttribute('aria-describedby'))!.split(' ')).toEqual(['new_password-hint', 'new_password-error']);

    // Nothing changed so far: the old password and the other session still work.
    expect((await fetch(url('/api/v1/me'), { headers: { 'x-session': other.session } })).status).toBe(200);

    expect(await submit(page, { current: 'first-password', next: 'second-password', repeated: 'second-password' })).toBe(303);
    expect(new URL(page.url()).pathname).toBe('/settings/password');
    expect(await page.locator('[role=status]').innerText()).toMatch(/^Your password was changed\. 1 other session was signed out\./);

    // The other session is over, this browser is still signed in, only the new password works.
    expect((await fetch(url('/api/v1/me'), { headers: { 'x-session': other.session } })).status).toBe(401);
    await page.goto(url('/settings/logins'));
    expect(new URL(page.url()).pathname).toBe('/settings/logins');
    expect(await page.locator('#sessions ~ .table-wrap tbody tr').count()).toBe(1);
    expect((await apiLogin('first-password')).status).toBe(401);
    expect((await apiLogin('second-password')).status).toBe(200);

    await tessera.core.audit.settled();
    await page.goto(url('/settings/security'));
    const log = await page.locator('tbody').innerText();
    expect(log).toContain('Password changed');
    expect(log).toContain('Password change refused');
    // The refused forms' 400s are reported by the console; nothing else may be.
    expect(watch.problems.filter((p) => !p.includes('status of 400 (Bad Request) (http://127.0.0.1:'))).toEqual([]);
    for (const { csp } of watch.policies) expect(csp).not.toContain('unsafe-inline');
    await page.close();
  }, 90_000);

  it('counts wrong current passwords against the sign-in limits, and refuses a change without the form token', async () => {
    const own = await watchedContext(browser!, { problems: [], policies: [] }, { viewport: { width: 1280, height: 900 } });
    try {
      const page = await own.newPage();
      await page.goto(url('/settings/password'));
      await page.fill('#username', 'quinn');
      await page.fill('#password', 'quinn-password');
      await navigate(page, () => page.click('button[type=submit]'));
      const csrf = await page.locator('input[name=csrf]').first().inputValue();
      const attempt = (current: string, token = csrf) =>
        page.request.post(url('/settings/password'), { form: { csrf: token, current_password: current, new_password: 'quinn-new-password', new_password_again: 'quinn-new-password' }, maxRedirects: 0 });
      expect((await attempt('quinn-password', 'not-the-token')).status()).toBe(403);
      const statuses: number[] = [];
      for (let i = 0; i < tessera.config.loginLimits.failuresPerUsername; i += 1) statuses.push((await attempt(`wrong-${i}`)).status());
      expect(statuses.every((s) => s === 400)).toBe(true);
      // Locked out now: even the right password is not checked.
      const locked = await attempt('quinn-password');
      expect(locked.status()).toBe(429);
      expect(locked.headers()['retry-after']).toMatch(/^\d+$/);
      // The same limit as every sign-in: the API login of quinn from this address is locked too.
      expect((await fetch(url('/users/quinn/login'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'quinn-password' }) })).status).toBe(429);
      // And nothing changed.
      expect(await tessera.core.accounts.authenticate('quinn', 'quinn-password')).toMatchObject({ ok: true });
    } finally {
      await own.close();
    }
  }, 60_000);
});
