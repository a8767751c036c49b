import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import { runTessera } from '../support/cli-process.ts';
import { HttpBrowser } from '../support/http-browser.ts';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

// Sign-in throttling (docs/design/sign-in-throttling.md) on the real PostgreSQL and Redis: one
// bucket per account whatever name addresses it and whichever page or API the password is typed
// into, failures counted per account and source so that guessing cannot lock the owner out, the
// account-wide pace, `tessera user unlock`; and the headers of every 429 Tessera answers.
describe('sign-in throttling', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let issuer: URL;
  let device: oidc.Configuration;
  /** What the server and the CLI read: 3 failures per account and source, 6 per account, 30 per address. */
  let env: Record<string, string>;
  const by = { actor: 'test' };

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    issuer = new URL(`http://127.0.0.1:${port}`);
    env = {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      TESSERA_REDIS_PREFIX: prefix,
      TESSERA_LOGIN_FAILURES_PER_USERNAME: '3',
      TESSERA_LOGIN_FAILURES_PER_ACCOUNT: '6',
      TESSERA_LOGIN_FAILURES_PER_IP: '30',
    };
    tessera = await startTestTessera(
      { ...env, PORT: String(port), ISSUER: issuer.origin, TESSERA_API_REQUESTS_PER_IP_PER_MINUTE: '40' },
      { oauth: { userCodeAttemptsPerIpPerHour: 12, userCodeAttemptsPerSessionPerHour: 4 } },
    );
    for (const name of ['bob', 'carol', 'dave', 'erin', 'frank', 'gina']) {
      await tessera.core.accounts.createUser({ username: name, email: `${name}@example.org`, password: `${name}-password-1`, scopes: ['read'] }, by);
    }
    await tessera.core.clients.create({ clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['read'] }, by);
    device = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  /** A client address of each test's own (X-Forwarded-For from loopback is trusted). */
  let addresses = 0;
  const newAddress = () => `198.51.100.${++addresses}`;

  /** The API's password login. */
  async function apiLogin(login: string, password: string, ip: string) {
    const res = await fetch(`${issuer.origin}/users/${encodeURIComponent(login)}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
      body: JSON.stringify({ password }),
    });
    await res.body?.cancel();
    return res;
  }

  /** The settings sign-in form at /login, as a browser at `ip` fills it in. */
  async function browserLogin(login: string, password: string, ip: string) {
    const browser = new HttpBrowser(issuer.origin, { 'x-forwarded-for': ip });
    const form = await browser.request('/login');
    const res = await fetch(new URL('/login', issuer), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip, cookie: `tessera_login_csrf=${browser.cookie('tessera_login_csrf')}` },
      body: new URLSearchParams({ csrf: /name="csrf" value="([^"]+)"/.exec(form.html)![1]!, username: login, password, next: '/settings/tokens' }),
    });
    await res.body?.cancel();
    return res;
  }

  /** The OAuth sign-in page of a device approval, as a browser at `ip` fills it in. */
  async function oauthLogin(login: string, password: string, ip: string) {
    const browser = new HttpBrowser(issuer.origin, { 'x-forwarded-for': ip });
    const start = await oidc.initiateDeviceAuthorization(device, { scope: 'read' });
    const input = await browser.request('/device');
    const confirm = await browser.submit(input, { user_code: start.user_code });
    const consent = await browser.submit(confirm, { confirm: 'yes' });
    expect(consent.url).toMatch(/\/interaction\//);
    return browser.submit(consent, { username: login, password, decision: 'approve' });
  }

  it('counts an account in one bucket whatever name addresses it: with bob locked, his e-mail address is locked too', async () => {
    const ip = newAddress();
    expect((await apiLogin('bob', 'wrong guess 1', ip)).status).toBe(401);
    expect((await apiLogin('bob@example.org', 'wrong guess 2', ip)).status).toBe(401);
    expect((await apiLogin('BOB', 'wrong guess 3', ip)).status).toBe(401);
    expect((await apiLogin('bob@example.org', 'bob-password-1', ip)).status).toBe(429);
    expect((await apiLogin('Bob@Example.org', 'bob-password-1', ip)).status).toBe(429);
    expect((await apiLogin('bob', 'bob-password-1', ip)).status).toBe(429);
  });

  it('shares the bucket between the API login, the browser sign-in and the OAuth sign-in page', async () => {
    const ip = newAddress();
    expect((await apiLogin('carol', 'wrong guess 1', ip)).status).toBe(401);
    expect((await browserLogin('carol@example.org', 'wrong guess 2', ip)).status).toBe(401);
    expect((await oauthLogin('carol', 'wrong guess 3', ip)).status).toBe(401);
    expect((await oauthLogin('carol', 'carol-password-1', ip)).status).toBe(429);
    expect((await browserLogin('carol', 'carol-password-1', ip)).status).toBe(429);
    expect((await apiLogin('carol@example.org', 'carol-password-1', ip)).status).toBe(429);
  });

  it('cannot be used to lock the owner out: failures lock their source, and a source that signed in before keeps its own budget', async () => {
    const home = newAddress();
    expect((await apiLogin('dave', 'dave-password-1', home)).status).toBe(200);
    // An attacker's guesses lock the attacker's address out of the account, nobody else's.
    const attacker = newAddress();
    for (let i = 0; i < 3; i++) expect((await apiLogin('dave', `guess ${i}`, attacker)).status).toBe(401);
    expect((await apiLogin('dave', 'dave-password-1', attacker)).status).toBe(429);
    expect((await apiLogin('dave', 'dave-password-1', home)).status).toBe(200);
    expect((await browserLogin('dave', 'dave-password-1', newAddress())).status).toBe(303);
    // Guesses from more addresses use up the account-wide pace (6 failures): then an address new
    // to the account waits, but the owner's known address still signs in.
    for (const ip of [newAddress(), newAddress()]) {
      expect((await apiLogin('dave@example.org', 'guess 1', ip)).status).toBe(401);
    }
    expect((await browserLogin('dave', 'guess 2', newAddress())).status).toBe(401);
    const paced = await apiLogin('dave', 'dave-password-1', newAddress());
    expect(paced.status).toBe(429);
    expect(paced.headers.get('ratelimit-limit')).toBe('6');
    expect((await apiLogin('dave', 'dave-password-1', home)).status).toBe(200);
    expect((await oauthLogin('dave@example.org', 'dave-password-1', home)).html).toMatch(/Device connected/);
  });

  it('counts an IPv6 source by its /64: walking through one\'s own prefix does not reset the count', async () => {
    const prefix = `2001:db8:${(++addresses).toString(16)}:1`;
    for (let i = 1; i <= 3; i++) expect((await apiLogin('gina', `guess ${i}`, `${prefix}::${i}`)).status).toBe(401);
    expect((await apiLogin('gina', 'gina-password-1', `${prefix}:ffff::4`)).status).toBe(429);
    expect((await apiLogin('gina', 'gina-password-1', `2001:db8:${addresses.toString(16)}:2::1`)).status).toBe(200);
  });

  it('`tessera user unlock` lifts an account\'s lockouts, by username or e-mail, and the audit log says who did it', async () => {
    const attacker = newAddress();
    for (let i = 0; i < 3; i++) await apiLogin('erin', `guess ${i}`, attacker);
    expect((await apiLogin('erin', 'erin-password-1', attacker)).status).toBe(429);
    const unlocked = await runTessera(['user', 'unlock', 'erin@example.org'], env);
    expect(unlocked.stderr).toBe('');
    expect(unlocked).toMatchObject({ code: 0, stdout: 'Unlocked erin: lifted 1 locked-out address.\n' });
    expect((await apiLogin('erin', 'erin-password-1', attacker)).status).toBe(200);
    const again = await runTessera(['user', 'unlock', 'erin'], env);
    expect(again).toMatchObject({ code: 0, stdout: 'erin was not locked; its failure counts are cleared.\n' });
    expect((await runTessera(['user', 'unlock', 'nobody'], env)).stderr).toMatch(/No user named "nobody"/);
    const user = await tessera.core.accounts.findUser('erin');
    const events = await tessera.core.audit.listFor(`user:${user!.id}`, { limit: 10 });
    expect(events.filter((e) => e.action === 'user.unlocked').map((e) => [e.actor.startsWith('cli:'), e.details])).toEqual([
      [true, { lockedSources: 0, paced: false }],
      [true, { lockedSources: 1, paced: false }],
    ]);
  }, 60_000);

  it('answers every 429 with Retry-After and the RateLimit-* headers', async () => {
    const headersOf = (res: { headers: Headers }) => ['retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'].map((name) => res.headers.get(name));
    const expectLimited = (res: { status: number; headers: Headers }, limit: number) => {
      expect(res.status).toBe(429);
      const [retryAfter, ...rateLimit] = headersOf(res);
      expect(Number(retryAfter)).toBeGreaterThan(0);
      expect(rateLimit).toEqual([String(limit), '0', retryAfter]);
    };

    // The password sign-ins, through each channel (3 failures per account and source).
    const ip = newAddress();
    for (let i = 0; i < 3; i++) await apiLogin('frank', `guess ${i}`, ip);
    expectLimited(await apiLogin('frank', 'frank-password-1', ip), 3);
    expectLimited(await browserLogin('frank', 'frank-password-1', ip), 3);
    expectLimited(await oauthLogin('frank', 'frank-password-1', ip), 3);

    // The user-code page of the device flow (4 codes per browser session an hour).
    const browser = new HttpBrowser(issuer.origin, { 'x-forwarded-for': newAddress() });
    let last;
    for (let i = 0; i < 5; i++) last = await browser.submit(await browser.request('/device'), { user_code: 'BCDF-GHJK' });
    expectLimited(last!, 4);

    // The general limit of the JSON API (40 requests a minute per address).
    const busy = newAddress();
    let answer;
    for (let i = 0; i < 41; i++) {
      answer = await fetch(`${issuer.origin}/api/v1/sessions`, { headers: { 'x-forwarded-for': busy } });
      await answer.body?.cancel();
    }
    expectLimited(answer!, 40);
  });
});
