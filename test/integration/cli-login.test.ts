import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientCredentialsAuth, CredentialsFile, DeviceGrantAuth, SavedDeviceGrantAuth, type SavedLogin } from '@tessera/client';
import { calculateJwkThumbprint } from 'jose';
import { CLI_ARGS } from '../support/cli-process.ts';
import { approveDevice } from '../support/device-approval.ts';
import { ledgerLog, recordPrintedSecrets } from '../support/secret-ledger.ts';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

// `tessera login`, `token`, `whoami` and `logout` run as real child processes (in a
// pseudo-terminal where the interactive output matters) against a real Tessera on PostgreSQL and
// Redis; the device codes are approved through the real verification pages.

const CODE = /enter the code:\s+([A-Z]{4}-[A-Z]{4})/;
const PASSWORD = 'alice-password';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A CLI process still running: its output so far, and a wait for a pattern in it. */
interface Running {
  output(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  done: Promise<Run>;
  kill(): void;
}

function watch(child: ReturnType<typeof spawn>): Running {
  let stdout = '';
  let stderr = '';
  const waiters: (() => void)[] = [];
  const changed = () => waiters.splice(0).forEach((wake) => wake());
  child.stdout!.on('data', (d: Buffer) => ((stdout += d.toString()), changed()));
  child.stderr?.on('data', (d: Buffer) => ((stderr += d.toString()), changed()));
  const done = new Promise<Run>((resolveRun, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      child.stdin?.end();
      recordPrintedSecrets(stdout);
      resolveRun({ code, stdout, stderr });
      changed();
    });
  });
  const output = () => stdout + stderr;
  return {
    output,
    done,
    kill: () => child.kill(),
    async waitFor(pattern, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(output());
        if (match) return match;
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${pattern} in the output (exit ${child.exitCode}):\n${output()}`);
        await new Promise<void>((wake) => {
          waiters.push(wake);
          setTimeout(wake, 200);
        });
      }
    },
  };
}

/** Starts `tessera …` with pipes: standard output and standard error apart (the latter also to the secret ledger), no terminal. */
function start(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, [...CLI_ARGS, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const ledger = ledgerLog('cli-stderr');
  if (ledger) child.stderr.on('data', ledger);
  return watch(child);
}

function tessera(args: string[], env: Record<string, string>): Promise<Run> {
  return start(args, env).done;
}

/** Starts `tessera …` in a pseudo-terminal (util-linux `script`), as a person at a terminal runs it. */
function startInTerminal(args: string[], env: Record<string, string>): Running {
  const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, ...CLI_ARGS, ...args].map(quote).join(' ');
  return watch(spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] }));
}

describe('tessera login, token, whoami and logout', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let server: TestTessera;
  let issuer: string;
  let home: string;
  let env: Record<string, string>;
  let aliceId: string;
  let recordsSecret: string;
  let harvesterSecret: string;
  let expiring: Running;

  const credentialsPath = () => join(home, 'config', 'tessera', 'credentials.json');
  const saved = async (): Promise<Record<string, SavedLogin>> => JSON.parse(await readFile(credentialsPath(), 'utf8')).profiles;
  const introspect = async (token: string) => {
    const response = await fetch(`${issuer}/oauth/introspect`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`records-api:${recordsSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
    return (await response.json()) as { active: boolean; client_id?: string; username?: string; scope?: string; credential_kind?: string };
  };
  /** Runs a login without a terminal, approving (or denying) its code through the pages. */
  const loginApproved = async (args: string[], decision: 'approve' | 'deny' = 'approve', extraEnv: Record<string, string> = {}) => {
    const login = start(['login', ...args], { ...env, ...extraEnv });
    const [, userCode] = await login.waitFor(CODE);
    await approveDevice(issuer, userCode!, 'alice', PASSWORD, decision);
    return { ...(await login.done), userCode: userCode! };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    server = await startTestTessera({
      PORT: String(port),
      ISSUER: issuer,
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      TESSERA_REDIS_PREFIX: prefix,
      TESSERA_DEVICE_POLL_INTERVAL: '1',
      // The shortest the configuration allows: one test lets a code expire.
      TESSERA_DEVICE_CODE_TTL: '60',
    });
    const by = { actor: 'test' };
    aliceId = (await server.core.accounts.createUser({ username: 'alice', password: PASSWORD, scopes: ['read', 'deposit:write'] }, by)).id;
    const scopes = ['read', 'deposit:write', 'offline_access'];
    await server.core.clients.create({ clientId: 'tessera-cli', name: 'Tessera CLI', kind: 'device', scopes }, by);
    await server.core.clients.create({ clientId: 'short-cli', name: 'Short-lived CLI', kind: 'device', scopes, accessTokenTtlSeconds: 60 }, by);
    recordsSecret = (await server.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    harvesterSecret = (await server.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service' }, by)).secret!;

    home = await mkdtemp(join(tmpdir(), 'tessera-login-'));
    // The user-side commands need no server configuration: a broken one must not matter.
    env = { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: join(home, 'config'), TESSERA_ARGON2_TIME_COST: 'lots', DATABASE_URL: 'postgres://nowhere.invalid/none' };
    // Nobody approves this one: it runs beside the other tests until its code expires (60 s).
    expiring = start(['login', '--issuer', issuer, '--profile', 'expiring'], env);
    await expiring.waitFor(CODE);
  });

  afterAll(async () => {
    expiring?.kill();
    await server?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('logs in at a terminal: the page, the code and a QR code, approval on the page, the login saved with mode 0600', async () => {
    const login = startInTerminal(['login', '--issuer', issuer, '--scope', 'read', '--scope', 'deposit:write'], env);
    const [, userCode] = await login.waitFor(CODE);
    await login.waitFor(/Waiting for the approval/);
    const shown = login.output();
    expect(shown).toContain(`Logging in to ${issuer} with the client tessera-cli (profile default).`);
    expect(shown).toContain(`Open this page in a browser:\r\n\r\n    ${issuer}/device\r\n`);
    expect(shown).toMatch(/[▀▄█]{7}[\s\S]*[▀▄█]{7}/);
    expect(shown).toContain(`Or scan this QR code with a phone: it opens ${issuer}/device?user_code=${userCode}`);
    expect(shown).toMatch(/Waiting for the approval \(the code expires in 60 s\)/);

    const { done: page } = await approveDevice(issuer, userCode!, 'alice', PASSWORD);
    expect(page.html).toMatch(/Device connected/);
    const result = await login.done;
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`Logged in to ${issuer} as alice with the scopes read deposit:write\\. The access token expires in 60 min and is refreshed automatically`));

    const directory = join(home, 'config', 'tessera');
    expect((await stat(directory)).mode & 0o777).toBe(0o700);
    expect((await stat(credentialsPath())).mode & 0o777).toBe(0o600);
    expect((await readdir(directory)).sort()).toEqual(['credentials.json']);
    const profile = (await saved()).default!;
    // The tokens are bound to a key pair kept with them, in the same file (mode 0600): DPoP.
    expect(profile).toEqual({
      issuer,
      clientId: 'tessera-cli',
      refreshToken: expect.any(String),
      accessToken: expect.any(String),
      expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      scope: 'read deposit:write',
      tokenType: 'DPoP',
      dpopKey: { kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), d: expect.any(String) },
    });
    expect(result.stdout).toContain('The tokens are bound to a key saved with them (DPoP)');
    expect(Date.parse(profile.expiresAt!) - Date.now()).toBeGreaterThan(3500_000);
    const jkt = await calculateJwkThumbprint({ kty: 'EC', crv: 'P-256', x: profile.dpopKey!.x, y: profile.dpopKey!.y });
    expect(await introspect(profile.refreshToken!)).toMatchObject({ active: true, client_id: 'tessera-cli', username: 'alice', credential_kind: 'refresh_token', cnf: { jkt } });
    expect(await introspect(profile.accessToken!)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });
  });

  it('prints the saved access token, and only it, unchanged while it is fresh: DPoP-bound, so refused as a Bearer token', async () => {
    const before = (await saved()).default!;
    const first = await tessera(['token'], env);
    const second = await tessera(['token'], env);
    expect(first).toEqual({ code: 0, stdout: `${before.accessToken}\n`, stderr: '' });
    expect(second).toEqual(first);
    expect((await saved()).default).toEqual(before);

    const asBearer = await fetch(`${issuer}/api/v1/me`, { headers: { authorization: `Bearer ${first.stdout.trim()}` } });
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('www-authenticate')).toMatch(/^DPoP .*error="invalid_token"/);
  });

  it('prints the headers of one request with a proof for it (curl -H @<(tessera token --url URL) URL), each proof good once', async () => {
    const me = `${issuer}/api/v1/me`;
    const printed = await tessera(['token', '--url', me], env);
    expect([printed.code, printed.stderr]).toEqual([0, '']);
    const lines = printed.stdout.trim().split('\n');
    expect(lines).toEqual([expect.stringMatching(/^Authorization: DPoP \S+$/), expect.stringMatching(/^DPoP: \S+$/)]);
    const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]));
    const call = await fetch(me, { headers });
    expect(call.status).toBe(200);
    expect(await call.json()).toMatchObject({ username: 'alice', credential: 'access_token', client_id: 'tessera-cli' });
    // The same proof again is a replay; a proof for GET is no good for POST elsewhere.
    expect((await fetch(me, { headers })).status).toBe(401);
    const post = await tessera(['token', '--url', `${issuer}/oauth/userinfo`, '--method', 'post'], env);
    expect(post.stdout).toMatch(/^Authorization: DPoP /);
  });

  it('whoami prints the subject, username, scopes and expiry', async () => {
    const who = await tessera(['whoami'], env);
    expect(who.stderr).toBe('');
    expect(who.code).toBe(0);
    expect(who.stdout).toContain(`issuer:   ${issuer}\n`);
    expect(who.stdout).toContain('client:   tessera-cli\n');
    expect(who.stdout).toContain(`subject:  ${aliceId}\n`);
    expect(who.stdout).toContain('username: alice\n');
    expect(who.stdout).toContain('scopes:   read deposit:write\n');
    expect(who.stdout).toMatch(/^expires: {2}\d{4}-\d\d-\d\dT\S+ \(in 60 min\)$/m);
    expect(who.stdout).toMatch(/^binding: {2}DPoP \(key thumbprint [A-Za-z0-9_-]{43}\)$/m);
  });

  it('keeps a login saved without a key (before DPoP, or with --bearer) working with bearer tokens', async () => {
    const login = await loginApproved(['--issuer', issuer, '--profile', 'plain', '--bearer']);
    expect(login.code).toBe(0);
    expect(login.stderr).toContain('Use it with: curl -H "Authorization: Bearer $(tessera token --profile plain)"');
    const plain = (await saved()).plain!;
    // Exactly what a login saved before DPoP holds.
    expect(Object.keys(plain).sort()).toEqual(['accessToken', 'clientId', 'expiresAt', 'issuer', 'refreshToken', 'scope']);
    expect(await introspect(plain.accessToken!)).toMatchObject({ active: true, token_type: 'Bearer' });
    const token = (await tessera(['token', '--profile', 'plain'], env)).stdout.trim();
    const call = await fetch(`${issuer}/auth/verify`, { headers: { authorization: `Bearer ${token}` } });
    expect(call.headers.get('x-auth-username')).toBe('alice');
    expect((await tessera(['whoami', '--profile', 'plain'], env)).stdout).toMatch(/^binding: {2}bearer$/m);
    // Refreshed, it stays a bearer login.
    const auth = new SavedDeviceGrantAuth({ file: credentialsPath(), profile: 'plain' });
    expect(await auth.renewAccessToken(plain.accessToken!)).not.toBe(plain.accessToken);
    expect((await saved()).plain!.tokenType).toBeUndefined();
    expect((await auth.fetch(`${issuer}/api/v1/me`)).status).toBe(200);
    expect((await tessera(['logout', '--profile', 'plain'], env)).code).toBe(0);
  });

  it('refreshes a token that expires within 60 s and saves the rotated refresh token', async () => {
    const login = await loginApproved(['--issuer', issuer, '--client-id', 'short-cli', '--profile', 'short', '--scope', 'read,deposit:write']);
    expect(login.code).toBe(0);
    // Without a terminal: the page and the code, no QR code.
    expect(login.stderr).toContain(`${issuer}/device`);
    expect(login.stderr).not.toMatch(/[▀▄█]/);
    expect(login.stderr).toMatch(/The access token expires in 60 s and is refreshed automatically/);
    const before = (await saved()).short!;

    const refreshed = await tessera(['token', '--profile', 'short'], env);
    expect(refreshed.stderr).toBe('');
    expect(refreshed.code).toBe(0);
    const after = (await saved()).short!;
    expect(refreshed.stdout).toBe(`${after.accessToken}\n`);
    expect(after.accessToken).not.toBe(before.accessToken);
    expect(after.refreshToken).not.toBe(before.refreshToken);
    expect(Date.parse(after.expiresAt!)).toBeGreaterThan(Date.parse(before.expiresAt!));
    // The binding survives the refresh: the same key, the new tokens bound to it.
    expect(after.dpopKey).toEqual(before.dpopKey);
    const jkt = await calculateJwkThumbprint({ kty: 'EC', crv: 'P-256', x: after.dpopKey!.x, y: after.dpopKey!.y });
    expect(await introspect(after.accessToken!)).toMatchObject({ active: true, client_id: 'short-cli', username: 'alice', scope: 'read deposit:write', token_type: 'DPoP', cnf: { jkt } });
    expect(await introspect(after.refreshToken!)).toMatchObject({ active: true, cnf: { jkt } });
    // The other profile is untouched.
    expect((await saved()).default!.clientId).toBe('tessera-cli');
  });

  it('lets concurrent `tessera token` calls refresh one after another without losing the rotated refresh token', async () => {
    const runs = await Promise.all([1, 2, 3, 4].map(() => tessera(['token', '--profile', 'short'], env)));
    for (const run of runs) {
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
    }
    // Each refreshed in turn (a 60 s token always needs it), each with the refresh token the one before saved.
    expect(new Set(runs.map((run) => run.stdout)).size).toBe(4);
    expect(await readdir(join(home, 'config', 'tessera'))).toEqual(['credentials.json']);

    const last = (await saved()).short!;
    const again = await tessera(['token', '--profile', 'short'], env);
    expect(again.code).toBe(0);
    const now = (await saved()).short!;
    expect(now.refreshToken).not.toBe(last.refreshToken);
    expect(await introspect(again.stdout.trim())).toMatchObject({ active: true, username: 'alice' });
  });

  it('logout revokes the login at the issuer and deletes the profile', async () => {
    const before = (await saved()).short!;
    const out = await tessera(['logout', '--profile', 'short'], env);
    expect(out.code).toBe(0);
    expect(out.stderr).toMatch(new RegExp(`Logged out of ${issuer}: the login is revoked`));
    expect(await introspect(before.refreshToken!)).toEqual({ active: false });
    expect(await introspect(before.accessToken!)).toEqual({ active: false });
    expect(Object.keys(await saved()).sort()).toEqual(['default']);

    const token = await tessera(['token', '--profile', 'short'], env);
    expect(token.code).toBe(67);
    expect(token.stdout).toBe('');
    expect(token.stderr).toMatch(/not logged in \(profile "short"\): run `tessera login --profile short`/);
    expect(await tessera(['logout', '--profile', 'short'], env)).toMatchObject({ code: 0, stderr: expect.stringMatching(/Not logged in \(profile short\): nothing to do/) });
  });

  it('tells the person to log in again when the refresh token has been revoked', async () => {
    expect((await loginApproved(['--issuer', issuer, '--client-id', 'short-cli', '--profile', 'revoked'])).code).toBe(0);
    const login = (await saved()).revoked!;
    expect(login.scope).toBe('read');
    const revoke = await fetch(`${issuer}/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ client_id: 'short-cli', token: login.refreshToken!, token_type_hint: 'refresh_token' }) });
    expect(revoke.status).toBe(200);

    const token = await tessera(['token', '--profile', 'revoked'], env);
    expect(token.code).toBe(67);
    expect(token.stdout).toBe('');
    expect(token.stderr).toMatch(/the saved login \(profile "revoked"\) has expired or was revoked: the server refused its refresh token: run `tessera login --profile revoked` again/);
    // The dead tokens are gone; the issuer and client stay for the next login.
    expect((await saved()).revoked).toEqual({ issuer, clientId: 'short-cli', refreshToken: null, accessToken: null, expiresAt: null, scope: 'read', tokenType: 'DPoP', dpopKey: login.dpopKey });
    expect((await tessera(['whoami', '--profile', 'revoked'], env)).code).toBe(67);
  });

  it('exits 67 from `tessera token`, as from whoami, once the server refuses the login, though its access token is fresh here', async () => {
    expect((await loginApproved(['--issuer', issuer, '--profile', 'refused'])).code).toBe(0);
    const login = (await saved()).refused!;
    // The login ends at the server (here its refresh token is refused after a revocation); the
    // saved access token still has most of its hour by the local clock.
    const revoke = await fetch(`${issuer}/oauth/revoke`, { method: 'POST', body: new URLSearchParams({ client_id: 'tessera-cli', token: login.refreshToken!, token_type_hint: 'refresh_token' }) });
    expect(revoke.status).toBe(200);
    const refused = await fetch(`${issuer}/oauth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'tessera-cli', refresh_token: login.refreshToken! }) });
    expect([refused.status, ((await refused.json()) as { error?: string }).error]).toEqual([400, 'invalid_grant']);
    expect(Date.parse(login.expiresAt!) - Date.now()).toBeGreaterThan(30 * 60_000);

    const token = await tessera(['token', '--profile', 'refused'], env);
    expect(token.stdout).toBe('');
    expect(token.stderr).toMatch(/the saved login \(profile "refused"\) has expired or was revoked: the server refused its refresh token: run `tessera login --profile refused` again\./);
    expect(token.code).toBe(67);
    const whoami = await tessera(['whoami', '--profile', 'refused'], env);
    expect([whoami.code, whoami.stdout]).toEqual([67, '']);
    expect(whoami.stderr).toMatch(/run `tessera login --profile refused`/);
    // The dead tokens are gone from the profile; the issuer and client stay for the next login.
    expect((await saved()).refused).toEqual({ issuer, clientId: 'tessera-cli', refreshToken: null, accessToken: null, expiresAt: null, scope: 'read', tokenType: 'DPoP', dpopKey: login.dpopKey });
  });

  it('exits 77 when the login is denied on the page, and still logs in without a browser to open', async () => {
    const denied = await loginApproved(['--issuer', issuer, '--profile', 'denied', '--open'], 'deny', { PATH: '/nonexistent' });
    expect(denied.stderr).toMatch(/Could not open a browser: no browser is known here \(set \$BROWSER, or install xdg-open\)\. Open the page yourself\./);
    expect(denied.code).toBe(77);
    expect(denied.stderr).toMatch(/tessera: the login was denied in the browser: nothing was saved\./);
    expect((await saved()).denied).toBeUndefined();
  });

  it('opens $BROWSER on the page with the code when asked', async () => {
    const opened = join(home, 'opened.txt');
    const browser = join(home, 'browser.sh');
    await writeFile(browser, `#!/bin/sh\nprintf '%s' "$1" > '${opened}'\n`);
    await chmod(browser, 0o755);
    const login = start(['login', '--issuer', issuer, '--profile', 'opened', '--open'], { ...env, BROWSER: browser });
    const [, userCode] = await login.waitFor(CODE);
    await login.waitFor(/Opened .* in a browser/);
    let url = '';
    for (let i = 0; i < 50 && !url; i++) {
      url = await readFile(opened, 'utf8').catch(() => '');
      if (!url) await new Promise((wake) => setTimeout(wake, 100));
    }
    expect(url).toBe(`${issuer}/device?user_code=${userCode}`);
    await approveDevice(issuer, new URL(url).searchParams.get('user_code')!, 'alice', PASSWORD);
    expect((await login.done).code).toBe(0);
    expect((await tessera(['logout', '--profile', 'opened'], env)).code).toBe(0);
  });

  it('exits 69 when the issuer cannot be reached, and 2 for wrong usage', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await tessera(['login', '--issuer', closed, '--profile', 'nowhere'], env);
    expect(unreachable.code).toBe(69);
    expect(unreachable.stderr).toMatch(new RegExp(`tessera: cannot reach ${closed} \\(ECONNREFUSED\\): check the issuer URL and the network\\.`));

    // `tessera token` asks the issuer about the saved login too (as whoami does): 69 when it cannot.
    await new CredentialsFile(credentialsPath()).update('offline', async () => ({
      profile: { issuer: closed, clientId: 'tessera-cli', refreshToken: 'a-refresh-token', accessToken: 'an-access-token', expiresAt: new Date(Date.now() + 3_600_000).toISOString(), scope: 'read' },
      result: undefined,
    }));
    const offline = await tessera(['token', '--profile', 'offline'], env);
    expect([offline.code, offline.stdout]).toEqual([69, '']);
    expect(offline.stderr).toMatch(new RegExp(`tessera: cannot reach ${closed} \\(.+\\): check the issuer URL and the network\\.`));

    const fresh = { ...env, XDG_CONFIG_HOME: join(home, 'empty') };
    const noIssuer = await tessera(['login'], fresh);
    expect(noIssuer.code).toBe(2);
    expect(noIssuer.stderr).toMatch(/which issuer\? Pass --issuer URL/);
    expect((await tessera(['token', '--bogus'], env)).code).toBe(2);
    expect((await tessera(['token', '--profile', '../x'], env)).code).toBe(2);
    expect((await tessera(['token', 'extra'], env)).code).toBe(2);
  });

  describe('the @tessera/client library', () => {
    it('SavedDeviceGrantAuth: fetch renews a token the server rejects, once, and saves the rotated refresh token', async () => {
      const file = credentialsPath();
      const credentials = JSON.parse(await readFile(file, 'utf8'));
      const before = credentials.profiles.default as SavedLogin;
      credentials.profiles.default.accessToken = 'no-longer-accepted';
      await writeFile(file, JSON.stringify(credentials));

      const auth = new SavedDeviceGrantAuth({ file });
      expect(await auth.getAccessToken()).toBe('no-longer-accepted');
      const response = await auth.fetch(`${issuer}/api/v1/me`);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ sub: aliceId, username: 'alice', client_id: 'tessera-cli' });
      // Through a gateway's forward-auth too: the proof names the request the gateway forwards.
      const target = 'https://repository.example.org/records/7';
      const headers = await auth.authorizationHeaders('GET', target);
      const forwarded = { 'x-original-method': 'GET', 'x-original-uri': '/records/7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'repository.example.org' };
      expect((await fetch(`${issuer}/auth/verify`, { headers: { ...headers, ...forwarded } })).headers.get('x-auth-username')).toBe('alice');
      const after = (await saved()).default!;
      expect(after.accessToken).not.toBe('no-longer-accepted');
      expect(after.refreshToken).not.toBe(before.refreshToken);
      expect((await tessera(['token'], env)).stdout).toBe(`${after.accessToken}\n`);
    });

    it('ClientCredentialsAuth with dpop: bound tokens, and calls with proofs', async () => {
      const auth = new ClientCredentialsAuth({ issuer, clientId: 'harvester', clientSecret: harvesterSecret, dpop: true });
      const token = await auth.getAccessToken();
      expect(await introspect(token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: expect.any(String) } });
      const me = await auth.fetch(`${issuer}/api/v1/me`);
      expect([me.status, ((await me.json()) as { client_id?: string }).client_id]).toEqual([200, 'harvester']);
    });

    it('ClientCredentialsAuth: a token for the service, and a new one when the old is rejected', async () => {
      const auth = new ClientCredentialsAuth({ issuer, clientId: 'harvester', clientSecret: harvesterSecret });
      const first = await auth.getAccessToken();
      expect(await auth.getAccessToken()).toBe(first);
      expect(await introspect(first)).toMatchObject({ active: true, client_id: 'harvester', scope: 'read' });
      const revoke = await fetch(`${issuer}/oauth/revoke`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`harvester:${harvesterSecret}`).toString('base64')}` },
        body: new URLSearchParams({ token: first }),
      });
      expect(revoke.status).toBe(200);
      const response = await auth.fetch(`${issuer}/auth/verify`);
      expect(response.status).toBe(200);
      expect(response.headers.get('x-auth-client-id')).toBe('harvester');
      expect(await auth.getAccessToken()).not.toBe(first);

      const wrong = new ClientCredentialsAuth({ issuer, clientId: 'harvester', clientSecret: 'wrong' });
      await expect(wrong.getAccessToken()).rejects.toMatchObject({ code: 'oauth_error', oauthError: 'invalid_client' });
    });

    it('DeviceGrantAuth: an interactive login through onPrompt, tokens in memory', async () => {
      const auth = new DeviceGrantAuth({
        issuer,
        clientId: 'tessera-cli',
        onPrompt: async (prompt) => {
          expect(prompt.verificationUri).toBe(`${issuer}/device`);
          await approveDevice(issuer, prompt.userCode, 'alice', PASSWORD);
        },
      });
      const token = await auth.getAccessToken();
      expect(auth.tokens).toMatchObject({ accessToken: token, refreshToken: expect.any(String), scope: 'read', tokenType: 'DPoP' });
      expect(await auth.identity()).toMatchObject({ subject: aliceId, username: 'alice', scopes: ['read'], credential: 'access_token' });
    });
  });

  it('exits 75 when the code expires before anyone approves it', async () => {
    const result = await expiring.done;
    expect(result).toMatchObject({ code: 75 });
    expect(result.stderr).toMatch(/tessera: the code expired before it was approved \(it was valid for 60 s\): run `tessera login` again, and approve within the time\./);
    expect((await saved()).expiring).toBeUndefined();
  }, 90_000);
});
