import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { approveDevice } from '../support/device-approval.ts';
import { launchChromium, navigate, pageProblems, watchedContext, type PageWatch } from '../support/page-checks.ts';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { recordSecret } from '../support/secret-ledger.ts';
import { startSmtpMailbox, type SmtpMailbox } from '../support/smtp-mailbox.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

// Resetting a forgotten password by e-mail, end to end: Tessera sends through nodemailer to a real
// SMTP server run by the suite (Debian's aiosmtpd, an independent implementation), the test reads
// the delivered message and follows its link in Debian's chromium. The answer never tells whether
// an account matched; a link works once (also under a race), not after its expiry (injected
// clock), not after a password change; the reset ends every session and OAuth login.

const LINK = /http:\/\/127\.0\.0\.1:\d+\/login\/reset\?token=[A-Za-z0-9_-]{43}/;
const ADDRESS_LIMIT = 40;

describe('resetting a forgotten password by e-mail', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let smtp: SmtpMailbox;
  let tessera: TestTessera;
  let issuer: string;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let deviceConfig: oidc.Configuration;
  /** Added to the real time by Tessera's clock: links expire without waiting. */
  let offsetMs = 0;
  const watch: PageWatch = { problems: [], policies: [] };

  beforeAll(async () => {
    db = await createTestDatabase();
    smtp = await startSmtpMailbox();
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    tessera = await startTestTessera(
      { PORT: String(port), ISSUER: issuer, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_DEVICE_POLL_INTERVAL: '1' },
      {
        mail: { smtp: { host: '127.0.0.1', port: smtp.port }, from: 'Zenodo <no-reply@zenodo.example>' },
        branding: { productName: 'Zenodo' },
        passwordReset: { linkTtlSeconds: 1800, requestsPerAddressPerHour: ADDRESS_LIMIT, messagesPerAccountPerHour: 3 },
      },
      { clock: () => Date.now() + offsetMs },
    );
    const by = { actor: 'test' };
    for (const name of ['ada', 'bob', 'cy', 'dee', 'eve']) {
      await tessera.core.accounts.createUser({ username: name, email: `${name}@example.org`, password: `${name}-old-password`, scopes: ['read', 'offline_access'].filter((s) => s in tessera.config.scopes) }, by);
    }
    await tessera.core.accounts.createUser({ username: 'nomail', password: 'nomail-password', scopes: ['read'] }, by);
    await tessera.core.clients.create({ clientId: 'repo-cli', name: 'Repository CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);
    deviceConfig = await oidc.discovery(new URL(issuer), 'repo-cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    browser = await launchChromium();
    context = await watchedContext(browser, watch, { viewport: { width: 1280, height: 900 } });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await tessera?.stop();
    await smtp?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  }, 60_000);

  const url = (path: string) => `${issuer}${path}`;
  const apiLogin = (user: string, password: string) => fetch(url(`/users/${user}/login`), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password }) });
  const forgot = (login: string) => fetch(url('/login/forgot'), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ login }) });
  const resetRows = async (user: string) => Number((await tessera.core.database.query<{ n: string }>(`SELECT count(*) AS n FROM password_resets r JOIN users u ON u.id = r.user_id WHERE u.username = $1`, [user])).rows[0]!.n);

  /** Asks for a link for `user` and returns it from the delivered message. */
  async function linkFor(user: string, seen = 0): Promise<string> {
    expect((await forgot(user)).status).toBe(200);
    return tokenOf(LINK.exec((await smtp.waitForMessage(`${user}@example.org`, seen)).text)![0]);
  }

  /** The link, its token registered with the log scan (test/logs): no log line may carry it. */
  function tokenOf(link: string): string {
    recordSecret('password_reset_token', new URL(link).searchParams.get('token'));
    return link;
  }

  const a11y = async (page: Page) => expect(await pageProblems(page)).toEqual([]);

  it('mails a link from the sign-in page, answers alike for unknown names, and the reset ends every sign-in', async () => {
    // What the reset must end: an API session and a device login of ada.
    const session = ((await (await apiLogin('ada', 'ada-old-password')).json()) as { session: string }).session;
    const start = await oidc.initiateDeviceAuthorization(deviceConfig, { scope: 'read offline_access' });
    await approveDevice(issuer, start.user_code, 'ada', 'ada-old-password');
    const device = await oidc.pollDeviceAuthorizationGrant(deviceConfig, start);
    expect(device.refresh_token).toBeDefined();

    const page = await context.newPage();
    await page.goto(url('/login'));
    await navigate(page, () => page.getByRole('link', { name: 'Forgot your password?' }).click());
    expect(new URL(page.url()).pathname).toBe('/login/forgot');
    await a11y(page);

    // An unknown name, an account without an e-mail address, and ada: the same page each time.
    const answers: string[] = [];
    for (const login of ['nobody-at-all', 'nomail', 'ADA@example.org']) {
      await page.goto(url('/login/forgot'));
      await page.fill('#login', login);
      await navigate(page, () => page.getByRole('button', { name: 'Send me a link' }).click());
      answers.push(await page.locator('main').innerText());
    }
    expect(new Set(answers).size).toBe(1);
    expect(answers[0]).toContain('for 30 minutes');
    await a11y(page);

    const message = await smtp.waitForMessage('ada@example.org');
    expect(message.headers.subject).toBe('Reset your Zenodo password');
    expect(message.headers.from).toContain('no-reply@zenodo.example');
    expect(message.text).toContain('Zenodo');
    expect(message.text).toContain('within 30 minutes');
    const link = tokenOf(LINK.exec(message.text)![0]);
    // Nothing but the link's own token: no password, no session, no other token.
    expect(message.text.replace(link, '')).not.toMatch(/tsr_|password:|[A-Za-z0-9_-]{40,}/);
    expect((await smtp.messages()).filter((m) => !(m.headers.to ?? '').includes('ada@'))).toEqual([]);
    // Only the token's digest is stored.
    const token = new URL(link).searchParams.get('token')!;
    const stored = await tessera.core.database.query<{ token_sha256: string }>('SELECT token_sha256 FROM password_resets');
    expect(stored.rows.map((r) => r.token_sha256)).not.toContain(token);

    await page.goto(link);
    expect(await page.locator('h1').innerText()).toBe('Choose a new password');
    await a11y(page);
    await page.fill('#new_password', 'ada-new-password');
    await page.fill('#new_password_again', 'ada-new-passwort');
    await navigate(page, () => page.getByRole('button', { name: 'Set new password' }).click()).catch(() => undefined);
    await page.waitForLoadState('load');
    expect(await page.locator('#new_password_again').getAttribute('aria-invalid')).toBe('true');
    expect(await page.locator('#new_password_again-error').innerText()).toBe('The two new passwords differ.');
    await page.fill('#new_password', 'ada-new-password');
    await page.fill('#new_password_again', 'ada-new-password');
    await navigate(page, () => page.getByRole('button', { name: 'Set new password' }).click());
    expect(new URL(page.url()).pathname).toBe('/login/reset/done');
    expect(await page.locator('[role=status]').innerText()).toContain('Every session and every app or device login of your account has been ended.');
    await a11y(page);

    // Everything of before has ended; only the new password works.
    expect((await fetch(url('/api/v1/me'), { headers: { 'x-session': session } })).status).toBe(401);
    await expect(oidc.refreshTokenGrant(deviceConfig, device.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await apiLogin('ada', 'ada-old-password')).status).toBe(401);
    expect((await apiLogin('ada', 'ada-new-password')).status).toBe(200);

    // The link is spent: refused when opened again, and when its form is sent again.
    const reopened = await page.goto(link);
    expect(reopened!.status()).toBe(410);
    expect(await page.locator('h1').innerText()).toBe('This link no longer works');
    await a11y(page);
    const resent = await fetch(url('/login/reset'), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, new_password: 'ada-third-password' , new_password_again: 'ada-third-password' }), redirect: 'manual' });
    expect(resent.status).toBe(410);
    expect((await apiLogin('ada', 'ada-new-password')).status).toBe(200);

    await tessera.core.audit.settled();
    const actions = (await tessera.core.database.query<{ action: string }>(`SELECT action FROM audit_events WHERE action LIKE 'password_reset.%' ORDER BY id`)).rows.map((r) => r.action);
    expect(actions).toEqual(['password_reset.requested', 'password_reset.completed']);
    await page.close();
  }, 120_000);

  it('refuses an expired link (injected clock) and a link issued before a password change', async () => {
    const expiring = await linkFor('bob');
    offsetMs += 31 * 60_000;
    try {
      const page = await context.newPage();
      const opened = await page.goto(expiring);
      expect(opened!.status()).toBe(410);
      expect(await page.locator('h1').innerText()).toBe('This link no longer works');
      await page.close();
    } finally {
      offsetMs -= 31 * 60_000;
    }
    // Within its life again, it would work; a password change since voids it.
    expect((await fetch(expiring)).status).toBe(200);
    await tessera.core.accounts.changePassword('bob', 'bob-changed-password', { actor: 'test' });
    expect((await fetch(expiring)).status).toBe(410);
  }, 60_000);

  it('lets exactly one of many simultaneous uses of a link through', async () => {
    const token = new URL(await linkFor('cy')).searchParams.get('token')!;
    const attempts = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        fetch(url('/login/reset'), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, new_password: `cy-race-password-${i}` , new_password_again: `cy-race-password-${i}` }), redirect: 'manual' }),
      ),
    );
    const statuses = attempts.map((a) => a.status);
    expect(statuses.filter((s) => s === 303)).toHaveLength(1);
    expect(statuses.filter((s) => s === 410)).toHaveLength(11);
    const winner = statuses.indexOf(303);
    expect((await apiLogin('cy', `cy-race-password-${winner}`)).status).toBe(200);
  }, 60_000);

  it('sends an account at most its hourly messages, answering alike, and limits each address', async () => {
    for (let i = 0; i < 5; i += 1) expect((await forgot('dee')).status).toBe(200);
    await smtp.waitForMessage('dee@example.org', 2);
    // The background sends have all been tried once the rows stop growing: three, never five.
    await tessera.core.audit.settled();
    expect(await resetRows('dee')).toBe(3);
    // Past the address's allowance: 429, whatever the name.
    let status = 200;
    let sent = 0;
    while (status === 200 && sent < ADDRESS_LIMIT + 5) {
      status = (await forgot(`someone-${sent}`)).status;
      sent += 1;
    }
    expect(status).toBe(429);
    expect((await forgot('eve')).status).toBe(429);
    expect(await resetRows('eve')).toBe(0);
    expect(watch.problems.filter((p) => !/status of (400|410) /.test(p))).toEqual([]);
    for (const { csp } of watch.policies) expect(csp).not.toContain('unsafe-inline');
  }, 60_000);
});
