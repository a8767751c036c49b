import { describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import type { AuditEvent } from '../../src/audit/audit-log.ts';
import type { AuditFilterInput } from '../../src/audit/audit-query.ts';
import { approveDevice } from '../support/device-approval.ts';
import { HttpBrowser } from '../support/http-browser.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';

// Every channel's real action, through a real client (fetch for the JSON API, the sign-in form,
// openid-client for OAuth), then exactly the audit event it should leave: actor, action, subject,
// details, and no secret anywhere in it.

const by = { actor: 'cli:test' };
const AGENT = 'audit-trail-test/1.0';
const PASSWORD = 'alice-password-123';

describe('the audit trail', () => {
  const suite = tesseraForSuite(
    { TESSERA_DEVICE_POLL_INTERVAL: '1' },
    {
      // A lockout after three failures; no reuse grace, so a second use of a refresh token is reuse.
      loginLimits: { failuresPerUsername: 3 },
      oauth: { refreshTokenReuseGraceSeconds: 0, userCodeAttemptsPerIpPerHour: 1000 },
    },
    { issuerOnItsPort: true },
  );
  const secrets = new Set<string>([PASSWORD]);
  let alice: { id: string } | undefined;
  let rsSecret = '';

  async function setUp() {
    if (alice) return alice;
    const { core } = suite.tessera;
    alice = await core.accounts.createUser({ username: 'alice', password: PASSWORD, scopes: ['read', 'deposit:write'] }, by);
    await core.accounts.createUser({ username: 'locked-bob', password: 'bob-password-123', scopes: ['read'] }, by);
    await core.clients.create({ clientId: 'cli', name: 'Repository CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);
    rsSecret = (await core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    secrets.add(rsSecret);
    return alice;
  }

  /** The events a filter finds once every background write has landed, oldest first. */
  async function events(filter: AuditFilterInput): Promise<AuditEvent[]> {
    await suite.tessera.core.audit.settled();
    return (await suite.tessera.core.auditQuery.page(filter, { limit: 500 })).events.reverse();
  }

  /** No secret the test knows of is in any event. */
  async function expectNoSecrets() {
    const all = JSON.stringify(await events({}));
    for (const secret of secrets) expect(all).not.toContain(secret);
  }

  const apiLogin = (username: string, password: string) =>
    fetch(new URL(`/users/${encodeURIComponent(username)}/login`, suite.tessera.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': AGENT },
      body: JSON.stringify({ password }),
    });

  it('records API password logins: success, wrong password, unknown user, lockout', async () => {
    const user = await setUp();
    const since = new Date();
    expect((await apiLogin('alice', PASSWORD)).status).toBe(200);
    expect((await apiLogin('alice', 'wrong-password-1')).status).toBe(401);
    expect((await apiLogin('no-such-user', 'wrong-password-2')).status).toBe(401);
    secrets.add('wrong-password-1').add('wrong-password-2');

    const signIns = await events({ action: 'sign_in.', since });
    expect(signIns.map((e) => [e.action, e.actor, e.subject])).toEqual([
      ['sign_in.succeeded', `user:${user.id}`, `user:${user.id}`],
      ['sign_in.failed', 'ip:127.0.0.1', `user:${user.id}`],
      ['sign_in.failed', 'ip:127.0.0.1', null],
    ]);
    expect(signIns[0]).toMatchObject({ ip: '127.0.0.1', userAgent: AGENT, details: { via: 'api' } });
    expect(signIns[1]!.details).toEqual({ via: 'api', reason: 'wrong_password' });
    // An unknown name is recorded as given (no account to name instead).
    expect(signIns[2]!.details).toEqual({ via: 'api', reason: 'unknown_user', username: 'no-such-user' });
    // The session the login opened, as before.
    expect((await events({ userId: user.id, action: 'session.created', since })).map((e) => e.details.session)).toHaveLength(1);

    // Three failures lock this address out of bob's account; the fourth try is refused unchecked.
    const bobSince = new Date();
    for (let i = 0; i < 3; i++) expect((await apiLogin('locked-bob', `bad-password-${i}`)).status).toBe(401);
    expect((await apiLogin('locked-bob', 'bob-password-123')).status).toBe(429);
    const bob = (await suite.tessera.core.accounts.findUserByLogin('locked-bob'))!;
    const bobEvents = await events({ userId: bob.id, action: 'sign_in.', since: bobSince });
    expect(bobEvents.map((e) => e.action)).toEqual(['sign_in.failed', 'sign_in.failed', 'sign_in.failed', 'sign_in.locked']);
    expect(bobEvents[2]!.details).toMatchObject({ reason: 'wrong_password', lockoutSeconds: expect.any(Number) });
    expect(bobEvents[3]!.details).toMatchObject({ via: 'api', limit: 3, retryAfterSeconds: expect.any(Number) });
    secrets.add('bob-password-123').add('bad-password-0').add('bad-password-1').add('bad-password-2');
    await expectNoSecrets();
  });

  it('records sign-ins at the settings pages (browser)', async () => {
    const user = await setUp();
    const since = new Date();
    const browser = new HttpBrowser(suite.tessera.url, { 'user-agent': AGENT });
    const form = await browser.request('/login');
    const failed = await browser.submit(form, { username: 'alice', password: 'not-her-password' });
    expect(failed.status).toBe(401);
    const signedIn = await browser.submit(failed, { username: 'alice', password: PASSWORD });
    expect(signedIn.url).toMatch(/\/settings\/tokens$/);
    secrets.add('not-her-password');

    const signIns = await events({ userId: user.id, action: 'sign_in.', since });
    expect(signIns.map((e) => [e.action, e.details.via, e.details.reason])).toEqual([
      ['sign_in.failed', 'browser', 'wrong_password'],
      ['sign_in.succeeded', 'browser', undefined],
    ]);
    expect(signIns[1]).toMatchObject({ actor: `user:${user.id}`, ip: '127.0.0.1', userAgent: AGENT });
    // The security page shows them; a cursor it did not give out is a clear 400.
    const security = await browser.request('/settings/security');
    expect(security.status).toBe(200);
    expect(security.html).toContain('Failed sign-in');
    const forged = await browser.request('/settings/security?before=bm90LWEtY3Vyc29y');
    expect(forged.status).toBe(400);
    expect(forged.html).toMatch(/not a cursor this service gave out/);
    await expectNoSecrets();
  });

  it('records the OAuth sign-in and the device approval, then reuse of a spent refresh token', async () => {
    const user = await setUp();
    const since = new Date();
    const device = await oidc.discovery(suite.issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(device, { scope: 'read offline_access' });
    secrets.add(start.device_code).add(start.user_code);
    await approveDevice(suite.issuer.origin, start.user_code, 'alice', PASSWORD);
    const tokens = await oidc.pollDeviceAuthorizationGrant(device, start);
    secrets.add(tokens.access_token).add(tokens.refresh_token!);

    const mine = await events({ userId: user.id, since });
    expect(mine.map((e) => e.action)).toEqual(['sign_in.succeeded', 'device.approved']);
    expect(mine[0]!.details).toEqual({ via: 'oauth' });
    const approved = mine[1]!;
    expect(approved).toMatchObject({ actor: `user:${user.id}`, subject: `user:${user.id}`, ip: '127.0.0.1' });
    expect(approved.details).toMatchObject({ clientId: 'cli', userId: user.id, scopes: ['offline_access', 'read'], grantId: expect.any(String) });
    // The client's view finds it too.
    expect((await events({ clientId: 'cli', action: 'device.approved', since })).map((e) => e.id)).toEqual([approved.id]);

    // Rotated once; the spent token presented again ends the login.
    const rotated = await oidc.refreshTokenGrant(device, tokens.refresh_token!);
    secrets.add(rotated.access_token).add(rotated.refresh_token!);
    await expect(oidc.refreshTokenGrant(device, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const reuse = await events({ action: 'oauth.reuse_detected', since });
    expect(reuse).toHaveLength(1);
    expect(reuse[0]).toMatchObject({
      actor: 'client:cli',
      subject: `user:${user.id}`,
      details: { credential: 'refresh_token', clientId: 'cli', userId: user.id, grantId: approved.details.grantId, grantRevoked: true },
    });
    await expectNoSecrets();
  }, 60_000);

  it('records a denial at the consent page, by whoever clicked it', async () => {
    await setUp();
    const since = new Date();
    const device = await oidc.discovery(suite.issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(device, { scope: 'read' });
    await approveDevice(suite.issuer.origin, start.user_code, '', '', 'deny');
    await expect(oidc.pollDeviceAuthorizationGrant(device, start)).rejects.toMatchObject({ error: 'access_denied' });
    const denied = await events({ action: 'device.denied', since });
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ actor: 'ip:127.0.0.1', subject: 'client:cli', details: { clientId: 'cli', requested: ['read'], reason: 'user_denied' } });
  }, 60_000);

  it('records a device login cancelled on the page that confirms its code', async () => {
    await setUp();
    const since = new Date();
    const device = await oidc.discovery(suite.issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(device, { scope: 'read' });
    const browser = new HttpBrowser(suite.issuer.origin, { 'user-agent': AGENT });
    const confirm = await browser.submit(await browser.request('/device'), { user_code: start.user_code });
    expect(confirm.html).toMatch(/Confirm the device/);
    const cancelled = await browser.submit(confirm, { abort: 'yes' });
    expect(cancelled.html).toMatch(/<h1>Device not connected<\/h1>/);
    expect(cancelled.html).toMatch(/You cancelled the sign-in: [^<]+ was not connected to your account\./);
    // The same code again is refused, and not recorded twice.
    await browser.submit(await browser.request('/device'), { user_code: start.user_code });
    await expect(oidc.pollDeviceAuthorizationGrant(device, start)).rejects.toMatchObject({ error: 'access_denied' });
    const denied = await events({ action: 'device.denied', since });
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ actor: 'ip:127.0.0.1', subject: 'client:cli', userAgent: AGENT, details: { clientId: 'cli', reason: 'cancelled_at_code' } });
  }, 60_000);

  it('records RFC 7009 revocations: by the client itself and by a resource server', async () => {
    const user = await setUp();
    const since = new Date();
    const device = await oidc.discovery(suite.issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const login = async () => {
      const start = await oidc.initiateDeviceAuthorization(device, { scope: 'read offline_access' });
      await approveDevice(suite.issuer.origin, start.user_code, 'alice', PASSWORD);
      const tokens = await oidc.pollDeviceAuthorizationGrant(device, start);
      secrets.add(tokens.access_token).add(tokens.refresh_token!);
      return tokens;
    };
    // The client logs out: its refresh token, which ends the login.
    const first = await login();
    await oidc.tokenRevocation(device, first.refresh_token!);
    // A resource server revokes an access token it was shown.
    const second = await login();
    const rs = await oidc.discovery(suite.issuer, 'records-api', undefined, oidc.ClientSecretBasic(rsSecret), { execute: [oidc.allowInsecureRequests] });
    await oidc.tokenRevocation(rs, second.access_token);
    // Nothing to revoke: nothing recorded.
    await oidc.tokenRevocation(rs, 'not-a-token-at-all');

    const revoked = await events({ action: 'oauth.token_revoked', since });
    expect(revoked.map((e) => [e.actor, e.subject, e.details.kind, e.details.grantRevoked, e.details.byOtherClient])).toEqual([
      ['client:cli', `user:${user.id}`, 'refresh_token', true, undefined],
      ['client:records-api', `user:${user.id}`, 'access_token', false, true],
    ]);
    expect(revoked[1]!.details).toMatchObject({ clientId: 'cli', userId: user.id });
    await expectNoSecrets();
  }, 60_000);

  it("records a user's own revocation and rotation of a personal token, and the end of a session", async () => {
    const user = await setUp();
    const since = new Date();
    const session = (await (await apiLogin('alice', PASSWORD)).json()) as { session: string };
    secrets.add(session.session);
    const api = (path: string, init: RequestInit = {}) =>
      fetch(new URL(path, suite.tessera.url), { ...init, headers: { 'x-session': session.session, 'content-type': 'application/json', 'user-agent': AGENT, ...init.headers } });
    const created = (await (await api('/api/v1/tokens', { method: 'POST', body: JSON.stringify({ name: 'nightly', scopes: ['read'] }) })).json()) as { token: string; id: string };
    secrets.add(created.token);
    const rotated = await api(`/api/v1/tokens/${created.id}/rotate`, { method: 'POST' });
    expect(rotated.status).toBe(201);
    const next = (await rotated.json()) as { token: string; id: string };
    secrets.add(next.token);
    expect((await api(`/api/v1/tokens/${next.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api('/logout', { method: 'POST' })).status).toBe(204);

    const mine = await events({ userId: user.id, since });
    // The sign-in's event is written in the background, the session's with it: either may come first.
    expect(mine.slice(0, 2).map((e) => e.action).sort()).toEqual(['session.created', 'sign_in.succeeded']);
    expect(mine.slice(2).map((e) => e.action)).toEqual(['token.created', 'token.rotated', 'token.revoked', 'session.ended']);
    for (const event of mine.slice(2)) expect(event).toMatchObject({ actor: `user:${user.id}`, ip: '127.0.0.1', userAgent: AGENT });
    expect(mine[4]).toMatchObject({ subject: `token:${next.id}`, details: { userId: user.id, name: 'nightly' } });
    await expectNoSecrets();
  });

  // Last: it breaks the table for failed sign-ins.
  it('answers a sign-in as usual when its audit event cannot be written, and logs the event instead', async () => {
    await setUp();
    const { core, logs } = suite.tessera;
    // The database refuses failed sign-ins from now on (a real write failure, not a stand-in).
    await core.database.query("ALTER TABLE audit_events ADD CONSTRAINT refuse_failures CHECK (action <> 'sign_in.failed') NOT VALID");
    try {
      expect((await apiLogin('someone-unknown', 'a-password-typed-9')).status).toBe(401);
      expect((await apiLogin('alice', PASSWORD)).status).toBe(200);
      await core.audit.settled();
      const line = logs.lines.map((l) => JSON.parse(l) as { msg: string; auditEvent?: { action: string; details: Record<string, unknown> } }).find((l) => l.msg === 'could not write an audit event');
      expect(line?.auditEvent).toMatchObject({ action: 'sign_in.failed', details: { via: 'api', reason: 'unknown_user', usernameOmitted: true } });
      // The name an unknown-user attempt gave stays out of the line (PostgreSQL's error detail,
      // which quotes the failing row, too); the password is in no line at all.
      expect(JSON.stringify(line)).not.toContain('someone-unknown');
      expect(logs.text).not.toContain('a-password-typed-9');
    } finally {
      await core.database.query('ALTER TABLE audit_events DROP CONSTRAINT refuse_failures');
    }
  });
});

describe('the audit trail when password hashing is saturated', () => {
  // One hash at a time and no queue, with hashes slow enough that concurrent sign-ins overlap.
  const suite = tesseraForSuite({}, { passwords: { argon2: { memoryKiB: 65536, timeCost: 3 }, hashing: { concurrency: 1, maxQueue: 0, busyCorePercent: 100 } } });

  it('records each sign-in refused as busy (503) as sign_in.busy', async () => {
    const { core } = suite.tessera;
    await core.accounts.createUser({ username: 'hurried', password: 'hurried-password-1', scopes: ['read'] }, by);
    const user = (await core.accounts.findUserByLogin('hurried'))!;
    const since = new Date();
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        fetch(new URL('/users/hurried/login', suite.tessera.url), { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': AGENT }, body: JSON.stringify({ password: 'hurried-password-1' }) }).then((res) => res.status),
      ),
    );
    const busy = answers.filter((status) => status === 503).length;
    expect(busy).toBeGreaterThan(0);
    expect(answers.filter((status) => status === 200).length).toBe(8 - busy);
    await core.audit.settled();
    const events = (await core.auditQuery.page({ userId: user.id, action: 'sign_in.', since }, { limit: 100 })).events;
    expect(events.filter((e) => e.action === 'sign_in.busy')).toHaveLength(busy);
    expect(events.filter((e) => e.action === 'sign_in.succeeded')).toHaveLength(8 - busy);
    expect(events.find((e) => e.action === 'sign_in.busy')).toMatchObject({ actor: 'ip:127.0.0.1', subject: `user:${user.id}`, userAgent: AGENT, details: { via: 'api' } });
  }, 60_000);
});
