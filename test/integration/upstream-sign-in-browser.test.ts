import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { launchChromium, navigate, pageProblems, watchedContext, type PageWatch } from '../support/page-checks.ts';
import { startUpstreamProvider, type UpstreamProvider } from '../support/upstream-provider.ts';
import { documentedFetch } from '../support/documented-answers.ts';
import { recordSecret } from '../support/secret-ledger.ts';

// Sign-in through an institution's identity provider, end to end: a real OpenID provider of the
// suite's own (stock oidc-provider with its development login and consent pages), Tessera as its
// relying party through openid-client, and Debian's chromium clicking through both. Covers the
// first sign-in (account made, scopes from the entitlement), a later one (same account), linking
// from the settings, a device login approved through the provider, a declined consent, a
// replayed callback, a wrong `iss`, a provider that is down, an e-mail that collides.

const ENTITLEMENT = 'urn:mace:uni.example.org:entitlement:deposit-actions';
const UPSTREAM_SECRET = 'upstream-client-secret-for-tessera-0123456789';

describe('sign-in through an upstream identity provider, in a browser', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let upstream: UpstreamProvider;
  let browser: Browser | undefined;
  let issuer: string;
  const watch: PageWatch = { problems: [], policies: [] };

  beforeAll(async () => {
    upstream = await startUpstreamProvider({
      ada: { preferred_username: 'ada.lovelace', name: 'Ada Lovelace', email: 'ada@uni.example.org', email_verified: true, eduperson_entitlement: [ENTITLEMENT] },
      'grace-at-uni': { preferred_username: 'ghopper', email: 'grace@uni.example.org', email_verified: true },
      // Claims the e-mail of Tessera's existing account "grace": verified at the provider, but never a key to her account.
      impostor: { preferred_username: 'grace', email: 'grace@example.org', email_verified: true },
      twin: { preferred_username: 'twin', email: 'twin@uni.example.org', email_verified: true },
    });
    db = await createTestDatabase();
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    const closedPort = await freePort();
    upstream.register({ clientId: 'tessera', clientSecret: UPSTREAM_SECRET, redirectUri: [`${issuer}/login/uni/callback`, `${issuer}/login/staff/callback`] });
    recordSecret('upstream_client_secret', UPSTREAM_SECRET);
    tessera = await startTestTessera(
      { PORT: String(port), ISSUER: issuer, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix },
      {
        identityProviders: [
          {
            id: 'uni',
            name: 'University Login',
            issuer: upstream.issuer,
            clientId: 'tessera',
            clientSecret: UPSTREAM_SECRET,
            scopes: ['openid', 'email', 'profile', 'entitlements'],
            scopeRules: [{ claim: 'eduperson_entitlement', value: ENTITLEMENT, scopes: ['deposit:actions'] }],
          },
          // The same provider again, for linked accounts only.
          { id: 'staff', name: 'Staff Login', issuer: upstream.issuer, clientId: 'tessera', clientSecret: UPSTREAM_SECRET, createAccounts: false },
          { id: 'closed', name: 'Closed IdP', issuer: `http://127.0.0.1:${closedPort}`, clientId: 'tessera', clientSecret: 'never-used-secret' },
        ],
      },
    );
    await tessera.core.accounts.createUser({ username: 'grace', email: 'grace@example.org', password: 'grace-password', scopes: ['read', 'deposit:write'] }, { actor: 'test' });
    await tessera.core.clients.create({ clientId: 'cli', name: 'Repository CLI', kind: 'device', scopes: ['read', 'deposit:actions'] }, { actor: 'test' });
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
  /** Every JSON answer held to /openapi.json. */
  const api = documentedFetch(() => issuer);
  const newContext = (width = 1280): Promise<BrowserContext> => watchedContext(browser!, watch, { viewport: { width, height: 900 } });
  const userCount = async () => (await tessera.core.database.query<{ n: number }>('SELECT count(*)::int AS n FROM users')).rows[0]!.n;
  const events = async (action: string) => (await tessera.core.database.query<{ subject: string | null; details: Record<string, unknown> }>('SELECT subject, details FROM audit_events WHERE action = $1 ORDER BY id', [action])).rows;
  /**
   * Tessera's own pages only (the provider's development pages load a web font from the Internet),
   * and not chromium's notes on the refusals this suite provokes (their pages are checked).
   */
  const tesseraProblems = () => watch.problems.filter((problem) => problem.startsWith(issuer) && !/Failed to load resource: the server responded with a status of (400|403|409|502)/.test(problem));

  /** At the provider's development pages: any password; then Continue, or Cancel at the consent. */
  async function atProvider(page: Page, login: string, decision: 'continue' | 'cancel' = 'continue') {
    await page.waitForURL((u) => u.href.startsWith(upstream.issuer));
    await page.fill('input[name="login"]', login);
    await page.fill('input[name="password"]', 'anything');
    await navigate(page, () => page.click('button[type="submit"]'));
    await page.waitForSelector('button:has-text("Continue")');
    if (decision === 'continue') return navigate(page, () => page.click('button:has-text("Continue")'));
    return navigate(page, () => page.click('a:has-text("Cancel")'));
  }

  /** axe (no serious or critical violation) and no sideways scrolling, on a phone and a desktop. */
  const checkPage = async (page: Page) => expect(await pageProblems(page)).toEqual([]);

  let firstCallback: string | undefined;
  let adaId: string;

  it('creates an account at the first sign-in, with the scopes the entitlement grants and no password', async () => {
    const context = await newContext();
    const page = await context.newPage();
    page.on('request', (request) => {
      if (!request.url().startsWith(url('/login/uni/callback'))) return;
      firstCallback ??= request.url();
      // The code and the state are credentials: never in a log line.
      for (const name of ['code', 'state']) recordSecret(`upstream_${name}`, new URL(request.url()).searchParams.get(name));
    });
    await page.goto(url('/login?next=/settings/sign-in'));
    await checkPage(page);
    await navigate(page, () => page.click('a:has-text("Sign in with University Login")'));
    const landed = await atProvider(page, 'ada');
    expect(landed.url()).toBe(url('/settings/sign-in'));
    await page.waitForSelector('h1:has-text("Sign-in methods")');
    expect(await page.textContent('main, body')).toContain('University Login');
    await checkPage(page);

    const ada = (await tessera.core.accounts.findUser('ada.lovelace'))!;
    expect(ada).not.toBeNull();
    for (const cookie of await context.cookies()) recordSecret(`cookie_${cookie.name}`, cookie.value);
    adaId = ada.id;
    expect(ada.allowedScopes.sort()).toEqual(['deposit:actions', 'read']);
    expect(ada.email).toBe('ada@uni.example.org');
    expect(await tessera.core.accounts.hasPassword(ada.id)).toBe(false);
    expect((await tessera.core.identityProviders.listLinks(ada.id)).map((l) => [l.provider, l.subject])).toEqual([['uni', 'ada']]);
    await tessera.core.audit.settled();
    expect((await events('user.created')).some((e) => e.subject === `user:${ada.id}` && e.details.provider === 'uni')).toBe(true);
    expect((await events('sign_in.succeeded')).some((e) => e.subject === `user:${ada.id}` && e.details.via === 'provider' && e.details.created === true)).toBe(true);
    // The API password login refuses the account (no password) with the hint about personal tokens.
    const login = await api(url('/users/ada.lovelace/login'), { method: 'POST', body: new URLSearchParams({ password: 'anything' }) });
    expect(login.status).toBe(401);
    expect(((await login.json()) as { message: string }).message).toMatch(/personal access token/);
    await context.close();
  }, 60_000);

  it('refuses the same callback a second time (single-use state), with a page and nothing changed', async () => {
    expect(firstCallback).toBeDefined();
    const context = await newContext();
    const page = await context.newPage();
    const before = await userCount();
    const response = await page.goto(firstCallback!);
    expect(response!.status()).toBe(400);
    expect(await page.textContent('h1')).toBe('This sign-in link is no longer valid');
    await checkPage(page);
    expect(await userCount()).toBe(before);
    expect((await context.cookies()).map((c) => c.name)).not.toContain('tessera_session');
    await context.close();
  }, 60_000);

  it('signs the same account in the next time', async () => {
    const before = await userCount();
    const context = await newContext(390);
    const page = await context.newPage();
    await page.goto(url('/login'));
    await navigate(page, () => page.click('a:has-text("Sign in with University Login")'));
    const landed = await atProvider(page, 'ada');
    expect(landed.url()).toBe(url('/settings/tokens'));
    expect(await page.textContent('nav')).toContain('Sign out ada.lovelace');
    expect(await userCount()).toBe(before);
    const [link] = await tessera.core.identityProviders.listLinks(adaId);
    expect(link!.lastUsedAt).not.toBeNull();
    await context.close();
  }, 60_000);

  it('shows a page when the person declines at the provider, and creates nothing', async () => {
    const before = await userCount();
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(url('/login'));
    await navigate(page, () => page.click('a:has-text("Sign in with University Login")'));
    const landed = await atProvider(page, 'grace-at-uni', 'cancel');
    expect(landed.status()).toBe(403);
    expect(await page.textContent('h1')).toBe('Sign-in not completed');
    expect(await page.textContent('body')).toContain('access_denied');
    await checkPage(page);
    expect(await userCount()).toBe(before);
    await context.close();
  }, 60_000);

  it('rejects an answer whose iss is not the provider (mix-up), and creates nothing', async () => {
    const before = await userCount();
    const context = await newContext();
    const page = await context.newPage();
    // A proxy (or a second provider) on the way back changes the RFC 9207 iss parameter.
    upstream.tamper((location) => {
      if (location.href.startsWith(url('/login/uni/callback'))) location.searchParams.set('iss', 'http://localhost:9/another-provider');
      return location;
    });
    await page.goto(url('/login'));
    await navigate(page, () => page.click('a:has-text("Sign in with University Login")'));
    const landed = await atProvider(page, 'grace-at-uni');
    expect(landed.status()).toBe(400);
    expect(await page.textContent('h1')).toBe('Sign-in answer rejected');
    expect(await userCount()).toBe(before);
    expect(await tessera.core.accounts.findUser('ghopper')).toBeNull();
    upstream.tamper(null);
    await context.close();
  }, 60_000);

  it('shows a page when the provider is down, and creates nothing', async () => {
    const before = await userCount();
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(url('/login'));
    const response = await navigate(page, () => page.click('a:has-text("Sign in with Closed IdP")'));
    expect(response.status()).toBe(502);
    expect(await page.textContent('h1')).toBe('Provider unavailable');
    expect(await page.textContent('body')).toContain('Closed IdP cannot be reached right now');
    expect(await page.textContent('body')).not.toMatch(/ECONNREFUSED|at .*\.ts:\d+/);
    await checkPage(page);
    expect(await userCount()).toBe(before);
    await context.close();
  }, 60_000);

  it('never gives an account away through a colliding e-mail: a new account is made, without it', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(url('/login'));
    await navigate(page, () => page.click('a:has-text("Sign in with University Login")'));
    await atProvider(page, 'impostor');
    expect(await page.textContent('nav')).toContain('Sign out grace-2');
    const grace = (await tessera.core.accounts.findUser('grace'))!;
    expect(await tessera.core.identityProviders.listLinks(grace.id)).toEqual([]);
    const impostor = (await tessera.core.accounts.findUser('grace-2'))!;
    expect(impostor.email).toBeNull();
    expect(impostor.allowedScopes).toEqual(['read']);
    await context.close();
  }, 60_000);

  it('links a provider to a signed-in account, signs in with it, refuses a link taken elsewhere, and unlinks', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(url('/login?next=/settings/sign-in'));
    await page.fill('#username', 'grace');
    await page.fill('#password', 'grace-password');
    await navigate(page, () => page.click('button:has-text("Sign in")'));
    expect(page.url()).toBe(url('/settings/sign-in'));
    await checkPage(page);
    await navigate(page, () => page.click('a:has-text("Link University Login")'));
    await atProvider(page, 'grace-at-uni');
    expect(page.url()).toBe(url('/settings/sign-in?linked=uni'));
    expect(await page.textContent('[role="status"]')).toContain('University Login is now linked');
    const grace = (await tessera.core.accounts.findUser('grace'))!;
    expect((await tessera.core.identityProviders.listLinks(grace.id)).map((l) => l.subject)).toEqual(['grace-at-uni']);
    await tessera.core.audit.settled();
    expect((await events('identity.linked')).some((e) => e.subject === `user:${grace.id}` && e.details.subject === 'grace-at-uni')).toBe(true);

    // Ada's identity is hers: linking it to grace is refused. (Signed out at the provider first.)
    await context.clearCookies({ domain: 'localhost' });
    await page.goto(url('/settings/sign-in'));
    await navigate(page, () => page.click('a:has-text("Link University Login")'));
    const taken = await atProvider(page, 'ada');
    expect(taken.status()).toBe(409);
    expect(await page.textContent('h1')).toBe('Already linked to another account');
    expect((await tessera.core.identityProviders.listLinks(adaId)).map((l) => l.subject)).toEqual(['ada']);

    // The linked identity signs grace in, in another browser.
    const other = await newContext();
    const otherPage = await other.newPage();
    await otherPage.goto(url('/login'));
    await navigate(otherPage, () => otherPage.click('a:has-text("Sign in with University Login")'));
    await atProvider(otherPage, 'grace-at-uni');
    expect(await otherPage.textContent('nav')).toContain('Sign out grace');
    await other.close();

    // grace has a password, so she may remove her only link.
    await page.goto(url('/settings/sign-in'));
    await navigate(page, () => page.click('button:has-text("Unlink")'));
    expect(await page.textContent('[role="status"]')).toContain('University Login is no longer linked');
    expect(await tessera.core.identityProviders.listLinks(grace.id)).toEqual([]);
    await context.close();
  }, 90_000);

  it('makes no account through a provider that may not create accounts: a page, nothing created', async () => {
    const before = await userCount();
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(url('/login'));
    await navigate(page, () => page.click('a:has-text("Sign in with Staff Login")'));
    const landed = await atProvider(page, 'grace-at-uni');
    expect(landed.status()).toBe(403);
    expect(await page.textContent('h1')).toBe('No account for this sign-in');
    expect(await userCount()).toBe(before);
    await context.close();
  }, 60_000);

  it('refuses to unlink the only way an account without a password signs in', async () => {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(url('/login?next=/settings/sign-in'));
    await navigate(page, () => page.click('a:has-text("Sign in with University Login")'));
    await atProvider(page, 'ada');
    const response = await navigate(page, () => page.click('button:has-text("Unlink")'));
    expect(response.status()).toBe(409);
    expect(await page.textContent('[role="alert"]')).toContain('only way to sign in');
    expect(await tessera.core.identityProviders.listLinks(adaId)).toHaveLength(1);
    await context.close();
  }, 60_000);

  it('approves a device login through the provider (openid-client device flow against Tessera)', async () => {
    const cli = await oidc.discovery(new URL(issuer), 'cli', { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(cli, { scope: 'read deposit:actions' });
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(device.verification_uri_complete!);
    await navigate(page, () => page.click('button[type="submit"]'));
    await page.waitForSelector('a:has-text("Sign in with University Login")');
    await checkPage(page);
    await navigate(page, () => page.click('a:has-text("Sign in with University Login")'));
    await atProvider(page, 'ada');
    // Back at Tessera's consent, signed in as the provider's person.
    await page.waitForSelector('text=Signed in as');
    expect(await page.textContent('body')).toContain('ada.lovelace');
    await navigate(page, () => page.click('button[value="approve"]'));
    const tokens = await oidc.pollDeviceAuthorizationGrant(cli, device);
    expect(tokens.scope?.split(' ').sort()).toEqual(['deposit:actions', 'read']);
    const me = await fetch(url('/api/v1/me'), { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { username: string }).username).toBe('ada.lovelace');
    await context.close();
  }, 90_000);

  it('makes one account when two first sign-ins of the same person complete at once', async () => {
    // Two browsers sign in as the same new person; the provider's redirects back are held (a proxy
    // sends the browsers elsewhere), then both callbacks are delivered together.
    const held: string[] = [];
    upstream.tamper((location) => {
      if (!location.href.startsWith(url('/login/uni/callback'))) return location;
      held.push(location.href);
      return new URL(url('/healthz'));
    });
    const bindings: string[] = [];
    for (let i = 0; i < 2; i += 1) {
      const context = await newContext();
      const page = await context.newPage();
      await page.goto(url('/login'));
      await navigate(page, () => page.click('a:has-text("Sign in with University Login")'));
      await atProvider(page, 'twin');
      bindings.push((await context.cookies()).find((c) => c.name === 'tessera_idp_browser')!.value);
      await context.close();
    }
    upstream.tamper(null);
    expect(held).toHaveLength(2);
    const answers = await Promise.all(held.map((callback, i) => fetch(callback, { headers: { cookie: `tessera_idp_browser=${bindings[i]}` }, redirect: 'manual' })));
    expect(answers.map((a) => [a.status, a.headers.get('location')])).toEqual([
      [303, '/settings/tokens'],
      [303, '/settings/tokens'],
    ]);
    const twins = (await tessera.core.database.query<{ id: string }>("SELECT id FROM users WHERE username LIKE 'twin%'")).rows;
    expect(twins).toHaveLength(1);
    expect((await tessera.core.identityProviders.listLinks(twins[0]!.id)).map((l) => l.subject)).toEqual(['twin']);
  }, 90_000);

  it('shows administrators the providers with their redirect URIs and the links, which they remove (API and console)', async () => {
    const login = await api(url('/users/admin/login'), { method: 'POST', body: new URLSearchParams({ password: 'initial-admin-password' }) });
    const session = ((await login.json()) as { session: string }).session;
    const headers = { 'x-session': session };
    const providers = await api(url('/api/v1/admin/identity-providers'), { headers });
    expect(providers.status).toBe(200);
    expect(((await providers.json()) as { identity_providers: { id: string; redirect_uri: string }[] }).identity_providers.map((p) => [p.id, p.redirect_uri])).toEqual([
      ['uni', url('/login/uni/callback')],
      ['staff', url('/login/staff/callback')],
      ['closed', url('/login/closed/callback')],
    ]);
    const listed = await api(url(`/api/v1/admin/users/${adaId}/identities`), { headers });
    expect(((await listed.json()) as { identities: { provider: string; subject: string }[] }).identities.map((i) => [i.provider, i.subject])).toEqual([['uni', 'ada']]);
    expect((await api(url(`/api/v1/admin/users/${adaId}/identities/uni/nobody`), { method: 'DELETE', headers })).status).toBe(404);
    // An administrator may remove even the only way in (the account can be given a password).
    expect((await api(url(`/api/v1/admin/users/${adaId}/identities/uni/ada`), { method: 'DELETE', headers })).status).toBe(204);
    expect(await tessera.core.identityProviders.listLinks(adaId)).toEqual([]);
    await tessera.core.audit.settled();
    expect((await events('identity.unlinked')).some((e) => e.subject === `user:${adaId}` && e.details.provider === 'uni')).toBe(true);

    // The console: the providers' page, and an account's links with a Remove button.
    const impostor = (await tessera.core.accounts.findUser('grace-2'))!;
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(url('/login?next=/admin/identity-providers'));
    await page.fill('#username', 'admin');
    await page.fill('#password', 'initial-admin-password');
    await navigate(page, () => page.click('button:has-text("Sign in")'));
    expect(page.url()).toBe(url('/admin/identity-providers'));
    expect(await page.textContent('table')).toContain(url('/login/uni/callback'));
    await checkPage(page);
    await page.goto(url(`/admin/users/${impostor.id}`));
    await navigate(page, () => page.click('a:has-text("Linked sign-ins")'));
    expect(await page.textContent('table')).toContain('impostor');
    await checkPage(page);
    await navigate(page, () => page.click('button:has-text("Remove")'));
    expect(await page.textContent('[role="status"]')).toContain('The link was removed');
    expect(await tessera.core.identityProviders.listLinks(impostor.id)).toEqual([]);
    await context.close();
  }, 60_000);

  it('ran every Tessera page without console errors or CSP violations', () => {
    expect(tesseraProblems()).toEqual([]);
  });
});
