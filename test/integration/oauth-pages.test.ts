import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import { HttpBrowser } from '../support/http-browser.ts';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

const PERCENT_SECRET = 'p@ss:w%rd 100%';
const PLUS_SECRET = 'plus+sign+secret';
const sha256Hex = (value: string) => createHash('sha256').update(value).digest('hex');

// The browser side of the device flow: CSRF, rate limits on user-code entry (RFC 8628 §5.1),
// expired pages, disabled accounts; and a resource server using a token.
describe('verification pages and token use', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let issuer: URL;
  let cli: oidc.Configuration;

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    issuer = new URL(`http://127.0.0.1:${port}`);
    tessera = await startTestTessera(
      { PORT: String(port), ISSUER: issuer.origin, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix },
      {
        oauth: { userCodeAttemptsPerIpPerHour: 5, userCodeAttemptsPerSessionPerHour: 3 },
        clients: [
          { clientId: 'legacy-percent', name: 'Legacy', kind: 'service', scopes: ['read'], secretSha256: sha256Hex(PERCENT_SECRET) },
          { clientId: 'legacy-plus', name: 'Legacy', kind: 'service', scopes: ['read'], secretSha256: sha256Hex(PLUS_SECRET) },
        ],
      },
    );
    const by = { actor: 'test' };
    await tessera.core.accounts.createUser({ username: 'bob', password: 'bob-password-1', scopes: ['read'] }, by);
    await tessera.core.accounts.createUser({ username: 'eve', password: 'eve-password-1', scopes: ['read'] }, by);
    await tessera.core.accounts.setDisabled('eve', true, by);
    await tessera.core.clients.create({ clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);
    cli = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  let addresses = 0;
  /** Each flow from an address of its own, so that the rate limits below start from zero. */
  const newBrowser = () => new HttpBrowser(issuer.origin, { 'x-forwarded-for': `192.0.2.${++addresses}` });

  async function toConsent(browser: HttpBrowser) {
    const start = await oidc.initiateDeviceAuthorization(cli, { scope: 'read' });
    const input = await browser.request('/device');
    const confirm = await browser.submit(input, { user_code: start.user_code });
    const consent = await browser.submit(confirm, { confirm: 'yes' });
    return { start, consent };
  }

  it('serves pages with a strict CSP and no external assets', async () => {
    const page = await new HttpBrowser(issuer.origin).request('/device');
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(page.headers.get('content-security-policy')).not.toMatch(/unsafe-inline/);
    expect(page.html).not.toMatch(/(src|href)="https?:\/\//);
    const css = await fetch(new URL('/assets/tessera.css', issuer));
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/text\/css/);
  });

  it('follows verification_uri_complete: the code arrives filled in, behind the confirmation page', async () => {
    const start = await oidc.initiateDeviceAuthorization(cli, { scope: 'read' });
    const browser = newBrowser();
    const autoPost = await browser.request(start.verification_uri_complete!);
    expect(autoPost.status).toBe(200);
    // oidc-provider's auto-submitting form: its one inline script is allowed by hash, nothing else.
    expect(autoPost.headers.get('content-security-policy')).toMatch(/script-src 'self' 'sha256-[^']+'/);
    const confirm = await browser.submit(autoPost, {});
    expect(confirm.html).toMatch(/Confirm the device/);
    expect(confirm.html).toContain(start.user_code);
  });

  it('refuses a code submitted without the form token (CSRF)', async () => {
    const res = await fetch(new URL('/device', issuer), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'user_code=BCDF-GHJK' });
    expect(res.status).toBe(400);
    expect(await res.text()).not.toMatch(/Confirm the device/);
  });

  it('refuses an approval with a forged CSRF token, and answers an unknown interaction with a page', async () => {
    const browser = newBrowser();
    const { consent } = await toConsent(browser);
    const forged = await browser.request(consent.url, { form: { csrf: 'forged', username: 'bob', password: 'bob-password-1', decision: 'approve' } });
    expect(forged.status).toBe(403);
    const unknown = await browser.request('/interaction/not-a-real-uid');
    expect(unknown.status).toBe(400);
    expect(unknown.html).toMatch(/This sign-in has expired/);
  });

  it('does not let a disabled account or a wrong password approve', async () => {
    const browser = newBrowser();
    const { consent } = await toConsent(browser);
    const disabled = await browser.submit(consent, { username: 'eve', password: 'eve-password-1', decision: 'approve' });
    expect(disabled.status).toBe(401);
    expect(disabled.html).toMatch(/Wrong username or password/);
    const wrong = await browser.submit(consent, { username: 'bob', password: 'not-bobs-password', decision: 'approve' });
    expect(wrong.status).toBe(401);
    expect(wrong.html).toMatch(/Wrong username or password/);
  });

  it('lets a resource server introspect a device-flow token, and nobody else', async () => {
    const browser = newBrowser();
    const { start, consent } = await toConsent(browser);
    const done = await browser.submit(consent, { username: 'bob', password: 'bob-password-1', decision: 'approve' });
    expect(done.html).toMatch(/Device connected/);
    const tokens = await oidc.pollDeviceAuthorizationGrant(cli, start);

    const { secret } = await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server', scopes: ['read'] }, { actor: 'test' });
    const introspect = (auth: string) =>
      fetch(new URL('/oauth/introspect', issuer), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(auth).toString('base64')}` },
        body: new URLSearchParams({ token: tokens.access_token }),
      });
    const answer = await introspect(`records-api:${secret}`);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ active: true, client_id: 'cli', scope: 'read', credential_kind: 'access_token', username: 'bob', iss: issuer.origin });

    const { secret: svcSecret } = await tessera.core.clients.create({ clientId: 'svc', name: 'Svc', kind: 'service', scopes: ['read'] }, { actor: 'test' });
    const refused = await introspect(`svc:${svcSecret}`);
    expect((await refused.json()) as object).not.toMatchObject({ active: true });
  });

  it('rate-limits user-code entry per browser session and per IP address, with Retry-After', async () => {
    // From an address of its own (Tessera trusts X-Forwarded-For from loopback): this session may
    // try 3 codes, the address 5.
    const browser = new HttpBrowser(issuer.origin, { 'x-forwarded-for': '203.0.113.7' });
    const input = await browser.request('/device');
    for (let i = 0; i < 3; i++) expect((await browser.submit(input, { user_code: 'BCDF-GHJK' })).status).toBe(400);
    const limited = await browser.submit(input, { user_code: 'BCDF-GHJK' });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.html).toMatch(/Too many attempts/);

    // A fresh session still meets the per-IP limit.
    const other = new HttpBrowser(issuer.origin, { 'x-forwarded-for': '203.0.113.7' });
    const otherInput = await other.request('/device');
    expect((await other.submit(otherInput, { user_code: 'BCDF-GHJK' })).status).toBe(400);
    expect((await other.submit(otherInput, { user_code: 'BCDF-GHJK' })).status).toBe(429);
    // Another address is not affected.
    const elsewhere = new HttpBrowser(issuer.origin, { 'x-forwarded-for': '198.51.100.9' });
    expect((await elsewhere.submit(await elsewhere.request('/device'), { user_code: 'BCDF-GHJK' })).status).toBe(400);
  });

  it('counts every post that names a user code, confirmations and aborts too', async () => {
    // A guess posted as a confirmation (or an abort), each from a fresh browser session, counts
    // against the address's 5 like a plain code lookup: past them, 429.
    const guess = async (extra: Record<string, string>) => {
      const browser = new HttpBrowser(issuer.origin, { 'x-forwarded-for': '203.0.113.8' });
      return (await browser.submit(await browser.request('/device'), { user_code: 'BCDF-GHJK', ...extra })).status;
    };
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push(await guess({ confirm: 'yes' }));
    for (let i = 0; i < 2; i++) statuses.push(await guess({ abort: 'yes' }));
    expect(statuses).not.toContain(429);
    expect(await guess({ confirm: 'yes' })).toBe(429);
    expect(await guess({ abort: 'yes' })).toBe(429);
    expect(await guess({})).toBe(429);
  });

  it('accepts Basic client credentials form-encoded (RFC 6749 §2.3.1) and raw', async () => {
    const token = (id: string, secret: string) =>
      fetch(new URL('/oauth/token', issuer), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
        body: 'grant_type=client_credentials',
      }).then((r) => r.status);
    const formEncode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
    expect(await token('legacy-percent', formEncode(PERCENT_SECRET))).toBe(200);
    expect(await token('legacy-percent', PERCENT_SECRET)).toBe(200);
    expect(await token('legacy-plus', formEncode(PLUS_SECRET))).toBe(200);
    expect(await token('legacy-plus', PLUS_SECRET)).toBe(200);
    expect(await token('legacy-plus', 'plus sign secret')).toBe(401);
  });

  it('ends every token of a client when it is deleted or its secret rotated', async () => {
    const by = { actor: 'test' };
    const { secret: apiSecret } = await tessera.core.clients.create({ clientId: 'audit-api', name: 'Audit API', kind: 'resource_server', scopes: ['read'] }, by);
    const active = async (token: string) => {
      const res = await fetch(new URL('/oauth/introspect', issuer), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`audit-api:${apiSecret}`).toString('base64')}` },
        body: new URLSearchParams({ token }),
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { active: boolean }).active;
    };
    const serviceToken = async (id: string, secret: string) => {
      const config = await oidc.discovery(issuer, id, undefined, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
      return (await oidc.clientCredentialsGrant(config)).access_token;
    };

    const { secret: first } = await tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by);
    const before = await serviceToken('harvester', first!);
    expect(await active(before)).toBe(true);
    const second = await tessera.core.clients.rotateSecret('harvester', by);
    expect(await active(before)).toBe(false);
    await expect(serviceToken('harvester', first!)).rejects.toMatchObject({ status: 401 });
    const after = await serviceToken('harvester', second);
    expect(await active(after)).toBe(true);
    await tessera.core.clients.delete('harvester', by);
    expect(await active(after)).toBe(false);

    // A deleted device client's refresh token no longer works either.
    await tessera.core.clients.create({ clientId: 'old-cli', name: 'Old CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);
    const oldCli = await oidc.discovery(issuer, 'old-cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(oldCli, { scope: 'read offline_access' });
    const browser = newBrowser();
    const confirm = await browser.submit(await browser.request('/device'), { user_code: start.user_code });
    const consent = await browser.submit(confirm, { confirm: 'yes' });
    await browser.submit(consent, { username: 'bob', password: 'bob-password-1', decision: 'approve' });
    const tokens = await oidc.pollDeviceAuthorizationGrant(oldCli, start);
    expect(await active(tokens.refresh_token!)).toBe(true);
    await tessera.core.clients.delete('old-cli', by);
    expect(await active(tokens.access_token)).toBe(false);
    expect(await active(tokens.refresh_token!)).toBe(false);
  });

  it('answers invalid_scope when client credentials ask only for scopes the client may not have', async () => {
    const { secret } = await tessera.core.clients.create({ clientId: 'reader', name: 'Reader', kind: 'service', scopes: ['read'] }, { actor: 'test' });
    const config = await oidc.discovery(issuer, 'reader', undefined, oidc.ClientSecretBasic(secret!), { execute: [oidc.allowInsecureRequests] });
    await expect(oidc.clientCredentialsGrant(config, { scope: 'deposit:write' })).rejects.toMatchObject({ error: 'invalid_scope' });
  });
});
