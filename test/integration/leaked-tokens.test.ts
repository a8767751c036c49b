import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { approveDevice } from '../support/device-approval.ts';
import { documentedFetch } from '../support/documented-answers.ts';
import type { ServerProcess } from '../support/server-process.ts';
import { startSmtpMailbox, type SmtpMailbox } from '../support/smtp-mailbox.ts';
import type { TestTessera } from '../support/start-tessera.ts';
import { introspectAs } from '../support/token-requests.ts';
import { startTwoNodes, type TwoNodes } from '../support/two-nodes.ts';

// The leaked-token endpoint as GitHub's secret scanning uses it: a stand-in of GitHub's key
// endpoint served here over HTTP, reports signed with the openssl command (not Tessera's code),
// and two Tessera nodes on one database and Redis: node A (this process) takes the reports, node B
// (`node src/main.ts`) has the credentials' introspection answers cached and must drop them. The
// owner is told by e-mail, through a real SMTP server (test/support/smtp-mailbox.ts).

/** Runs a command and answers its stdout as bytes. */
function run(command: string, args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: 'buffer' }, (error, stdout, stderr) => (error ? reject(new Error(`${command} ${args.join(' ')}: ${stderr.toString()}`)) : resolve(stdout)));
  });
}

interface TestKey {
  /** The private key's file, for `openssl dgst -sign`. */
  file: string;
  publicPem: string;
  /** As GitHub names its keys: the hex SHA-256 of the public key's DER. */
  id: string;
}

describe('reports of leaked tokens (GitHub secret scanning partner format)', () => {
  let nodes: TwoNodes;
  let dir: string;
  let a: TestTessera;
  let b: ServerProcess;
  let smtp: SmtpMailbox;
  let keyServer: Server;
  /** The keys the stand-in publishes, and how often it was asked for them. */
  let published: TestKey[] = [];
  let keyReads = 0;
  let keyA: TestKey;
  let keyB: TestKey;
  /** Node A's clock runs ahead by this much (the bound on reading the keys again is a minute). */
  let clockOffsetMs = 0;
  let rsSecret: string;
  let serviceSecret: string;
  const fetchA = documentedFetch(() => a.url);
  const by = { actor: 'test' };

  async function makeKey(name: string): Promise<TestKey> {
    const file = join(dir, `${name}.pem`);
    await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file]);
    const publicPem = (await run('openssl', ['ec', '-in', file, '-pubout'])).toString('utf8');
    const der = await run('openssl', ['ec', '-in', file, '-pubout', '-outform', 'DER']);
    return { file, publicPem, id: createHash('sha256').update(der).digest('hex') };
  }

  /** base64 of `openssl dgst -sha256 -sign` over the body's bytes. */
  async function sign(body: string, key: TestKey): Promise<string> {
    const file = join(dir, `body-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(file, body);
    return (await run('openssl', ['dgst', '-sha256', '-sign', key.file, file])).toString('base64');
  }

  async function send(body: string, headers: Record<string, string>, reporter = 'github'): Promise<Response> {
    return fetchA(`${a.url}/api/v1/leaked-tokens/${reporter}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  }

  /** Sends `reports` signed with `key` (under `keyId`, the key's own by default). */
  async function report(reports: unknown, key: TestKey = keyA, keyId = key.id): Promise<Response> {
    const body = typeof reports === 'string' ? reports : JSON.stringify(reports);
    return send(body, { 'github-public-key-identifier': keyId, 'github-public-key-signature': await sign(body, key) });
  }

  const introspect = (base: string, token: string) => introspectAs({ url: base }, { id: 'records-api', secret: rsSecret }, token);

  /** Asks until the answer is inactive; B caches active answers for 60 s, so only the invalidation gets it there in time. */
  async function inactiveWithin(base: string, token: string, ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    for (;;) {
      const answer = await introspect(base, token);
      if (answer.active === false) return;
      if (performance.now() > deadline) throw new Error(`${base} still answered active ${ms} ms after the report`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async function login(username: string, password: string): Promise<string> {
    const res = await fetch(`${a.url}/users/${username}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password }) });
    expect(res.status).toBe(200);
    return String(((await res.json()) as { session: string }).session);
  }

  async function personalToken(session: string, name: string): Promise<{ id: string; token: string }> {
    const res = await fetch(`${a.url}/api/v1/tokens`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-session': session }, body: JSON.stringify({ name }) });
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string; token: string };
  }

  async function leakEvents(userId: string) {
    return (await a.core.auditQuery.page({ userId, action: 'credential.leaked' }, { limit: 100 })).events;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-leaks-'));
    [keyA, keyB] = await Promise.all([makeKey('a'), makeKey('b')]);
    published = [keyA];
    keyServer = createServer((req, res) => {
      if (req.url !== '/meta/public_keys/secret_scanning') {
        res.writeHead(404).end();
        return;
      }
      keyReads += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ public_keys: published.map((key, i) => ({ key_identifier: key.id, key: key.publicPem, is_current: i === published.length - 1 })) }));
    });
    await new Promise<void>((resolve) => keyServer.listen(0, '127.0.0.1', resolve));
    const keysUrl = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}/meta/public_keys/secret_scanning`;

    smtp = await startSmtpMailbox();
    nodes = await startTwoNodes({
      settings: { TESSERA_INTROSPECTION_CACHE_TTL: '60', TESSERA_DEVICE_POLL_INTERVAL: '1' },
      a: {
        settings: { TESSERA_LEAKED_TOKENS: 'true' },
        overrides: {
          leakedTokens: { reporters: { github: { keysUrl } }, maxBodyBytes: 65_536, maxTokensPerReport: 50 },
          mail: { smtp: { host: '127.0.0.1', port: smtp.port }, from: 'Records <no-reply@records.example>' },
          branding: { productName: 'Records' },
        },
        options: { clock: () => Date.now() + clockOffsetMs },
      },
    });
    ({ a, b } = nodes);
    await a.core.accounts.createUser({ username: 'alice', email: 'alice@example.org', password: 'alice-password', scopes: ['read'] }, by);
    rsSecret = (await a.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    await a.core.clients.create({ clientId: 'cli', name: 'Repository CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);
    serviceSecret = (await a.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
  }, 60_000);

  afterAll(async () => {
    await nodes?.stop();
    await smtp?.stop();
    await new Promise((resolve) => keyServer?.close(resolve));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('revokes a reported personal token and API session on every node at once, and labels each report', async () => {
    const alice = await a.core.accounts.findUserByLogin('alice');
    const session = await login('alice', 'alice-password');
    const other = await login('alice', 'alice-password');
    const { id: tokenId, token } = await personalToken(other, 'ci');
    // Node B has both answers cached (for 60 s).
    for (const value of [token, session]) {
      expect(await introspect(b.url, value)).toMatchObject({ active: true });
      expect(await introspect(b.url, value)).toMatchObject({ active: true });
    }
    const url = 'https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/deploy.sh';
    const mistyped = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
    const res = await report([
      { token, type: 'tessera_personal_access_token', url, source: 'content' },
      { token: session, type: 'tessera_session_token', url: 'https://gist.github.com/octocat/1', source: 'gist_content' },
      { token: mistyped, type: 'tessera_personal_access_token', url, source: 'content' },
      { token: 'ghp_notoursatall', type: 'tessera_personal_access_token', url: '', source: 'unknown' },
    ]);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual([
      { token_raw: token, token_type: 'tessera_personal_access_token', label: 'true_positive' },
      { token_raw: session, token_type: 'tessera_session_token', label: 'true_positive' },
      { token_raw: mistyped, token_type: 'tessera_personal_access_token', label: 'false_positive' },
      { token_raw: 'ghp_notoursatall', token_type: 'tessera_personal_access_token', label: 'false_positive' },
    ]);
    expect(keyReads).toBe(1);

    for (const value of [token, session]) {
      expect(await introspect(a.url, value)).toEqual({ active: false });
      await inactiveWithin(b.url, value, 5000);
    }
    // The session that created the token is untouched: only what was reported ends.
    expect(await introspect(a.url, other)).toMatchObject({ active: true });
    const tokens = (await (await fetch(`${a.url}/api/v1/tokens`, { headers: { 'x-session': other } })).json()) as { tokens: { id: string; revoked: boolean }[] };
    expect(tokens.tokens.find((t) => t.id === tokenId)).toMatchObject({ revoked: true });

    // The owner's log says what ended and where it was found.
    const events = await leakEvents(alice!.id);
    expect(events.map((e) => ({ actor: e.actor, subject: e.subject, details: e.details }))).toEqual(
      expect.arrayContaining([
        { actor: 'reporter:github', subject: `token:${tokenId}`, details: expect.objectContaining({ kind: 'personal_access_token', userId: alice!.id, name: 'ci', url, source: 'content', reporter: 'github', type: 'tessera_personal_access_token' }) },
        { actor: 'reporter:github', subject: `user:${alice!.id}`, details: expect.objectContaining({ kind: 'session', userId: alice!.id, url: 'https://gist.github.com/octocat/1', source: 'gist_content', reporter: 'github' }) },
      ]),
    );
    expect(events).toHaveLength(2);
    // No token value in any event or log line.
    expect(JSON.stringify(events)).not.toContain(token);
    expect(JSON.stringify(events)).not.toContain(session);
    expect(a.logs.text).not.toContain(token);
    expect(a.logs.text).not.toContain(session);

    // …and the owner sees it on their security page.
    const page = await fetch(`${a.url}/settings/security`, { headers: { cookie: `tessera_session=${other}`, accept: 'text/html' } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Access token revoked: it was found in public');
    expect(html).toContain(`found at ${url}`);
    expect(html).toContain('Session ended: its token was found in public');
    expect(html).toContain('found at https://gist.github.com/octocat/1');
    expect(html).toContain('reported by the secret scanner “github”');

    // …and by e-mail: one message for the report, naming both, never carrying a token.
    const message = await smtp.waitForMessage('alice@example.org');
    expect(message.headers.subject).toBe('Records: tokens of yours were found in public and revoked');
    expect(message.text).toContain(`The personal access token "ci" (${token.slice(0, 12)}…), found at ${url} (content; reported by github)`);
    expect(message.text).toContain('An API session token, found at https://gist.github.com/octocat/1 (gist content; reported by github)');
    expect(message.text).toContain(`${a.config.issuer}/settings/security`);
    expect(message.text).not.toContain(token);
    expect(message.text).not.toContain(session);
  }, 30_000);

  it('answers a repeated report the same, and records nothing more', async () => {
    const alice = (await a.core.accounts.findUserByLogin('alice'))!;
    const session = await login('alice', 'alice-password');
    const { token } = await personalToken(session, 'twice');
    const reports = [
      { token, type: 'tessera_personal_access_token', url: 'https://github.com/o/r/blob/1/a', source: 'commit' },
      { token: session, type: 'tessera_session_token', url: 'https://github.com/o/r/blob/1/a', source: 'commit' },
    ];
    const expected = [
      { token_raw: token, token_type: 'tessera_personal_access_token', label: 'true_positive' },
      { token_raw: session, token_type: 'tessera_session_token', label: 'true_positive' },
    ];
    const before = (await leakEvents(alice.id)).length;
    expect(await (await report(reports)).json()).toEqual(expected);
    expect((await leakEvents(alice.id)).length).toBe(before + 2);
    expect(await (await report(reports)).json()).toEqual(expected);
    // The same token twice in one report, too.
    expect(await (await report([reports[0], reports[0]])).json()).toEqual([expected[0], expected[0]]);
    expect((await leakEvents(alice.id)).length).toBe(before + 2);
    // One message for the first report of these two, none for the repeats.
    await smtp.waitForMessage('alice@example.org', 1);
    expect((await smtp.messages()).length).toBe(2);
  });

  it("ends an opaque OAuth token's whole login when a reporter found one, and a client's own token alone", async () => {
    const alice = (await a.core.accounts.findUserByLogin('alice'))!;
    const config = await oidc.discovery(new URL(a.config.issuer), 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(config, { scope: 'read offline_access' });
    await approveDevice(a.config.issuer, start.user_code, 'alice', 'alice-password');
    const tokens = await oidc.pollDeviceAuthorizationGrant(config, start);
    const refresh = tokens.refresh_token!;
    expect(refresh).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(tokens.access_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const service = await fetch(`${a.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`harvester:${serviceSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'read' }),
    });
    const serviceToken = ((await service.json()) as { access_token: string }).access_token;
    for (const value of [refresh, tokens.access_token, serviceToken]) {
      expect(await introspect(b.url, value)).toMatchObject({ active: true });
      expect(await introspect(b.url, value)).toMatchObject({ active: true });
    }
    const url = 'https://ci.example.org/build/7/log';
    const reports = [
      { token: refresh, type: 'tessera_oauth_token', url, source: 'unknown' },
      { token: serviceToken, type: 'tessera_oauth_token', url, source: 'unknown' },
      { token: 'A'.repeat(43), type: 'tessera_oauth_token', url, source: 'unknown' },
    ];
    const expected = ['true_positive', 'true_positive', 'false_positive'];
    expect(((await (await report(reports)).json()) as { label: string }[]).map((v) => v.label)).toEqual(expected);
    // The refresh token's login went with it: its access token too, on both nodes.
    for (const value of [refresh, tokens.access_token, serviceToken]) {
      expect(await introspect(a.url, value)).toEqual({ active: false });
      await inactiveWithin(b.url, value, 5000);
    }
    const [event] = (await leakEvents(alice.id)).filter((e) => e.details.kind === 'refresh_token');
    expect(event).toMatchObject({ actor: 'reporter:github', subject: `user:${alice.id}`, details: { clientId: 'cli', userId: alice.id, url, source: 'unknown' } });
    const clientEvents = (await a.core.auditQuery.page({ clientId: 'harvester', action: 'credential.leaked' }, { limit: 10 })).events;
    expect(clientEvents).toHaveLength(1);
    expect(clientEvents[0]).toMatchObject({ subject: 'client:harvester', details: { kind: 'client_credentials', clientId: 'harvester' } });
    // Reported again: the same answer, though nothing of them is left, and nothing more written.
    expect(((await (await report(reports)).json()) as { label: string }[]).map((v) => v.label)).toEqual(expected);
    expect((await leakEvents(alice.id)).filter((e) => e.details.kind === 'refresh_token')).toHaveLength(1);
    const page = await (await fetch(`${a.url}/settings/security`, { headers: { cookie: `tessera_session=${await login('alice', 'alice-password')}`, accept: 'text/html' } })).text();
    expect(page).toContain('App or device login ended: a token of it was found in public');
    expect(page).toContain('a refresh token of the app cli');
  }, 30_000);

  it('records each credential once when reports of it arrive at the same time', async () => {
    const alice = (await a.core.accounts.findUserByLogin('alice'))!;
    const config = await oidc.discovery(new URL(a.config.issuer), 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const start = await oidc.initiateDeviceAuthorization(config, { scope: 'read offline_access' });
    await approveDevice(a.config.issuer, start.user_code, 'alice', 'alice-password');
    const { refresh_token: refresh } = await oidc.pollDeviceAuthorizationGrant(config, start);
    const session = await login('alice', 'alice-password');
    const { token } = await personalToken(session, 'found twice at once');
    const url = 'https://github.com/o/r/blob/2/b';
    const reports = [
      { token: refresh!, type: 'tessera_oauth_token', url, source: 'commit' },
      { token, type: 'tessera_personal_access_token', url, source: 'commit' },
      { token: session, type: 'tessera_session_token', url, source: 'commit' },
    ];
    const before = (await leakEvents(alice.id)).length;
    // Eight scanners' reports of the same three credentials, all at once.
    const answers = await Promise.all(Array.from({ length: 8 }, async () => (await report(reports)).json() as Promise<{ label: string }[]>));
    for (const answer of answers) expect(answer.map((verdict) => verdict.label)).toEqual(['true_positive', 'true_positive', 'true_positive']);
    const all = await leakEvents(alice.id);
    const events = all.slice(0, all.length - before); // newest first: this report's
    expect(events.map((event) => event.details.kind).sort()).toEqual(['personal_access_token', 'refresh_token', 'session']);
    for (const value of [refresh!, token, session]) expect(await introspect(a.url, value)).toEqual({ active: false });
  }, 30_000);

  it('refuses what is not a signed JSON report from a configured reporter, saying why', async () => {
    const body = JSON.stringify([{ token: 'x', type: 't', url: '', source: 'content' }]);
    const signature = await sign(body, keyA);
    const expectRefusal = async (res: Response, status: number, message: RegExp) => {
      expect(res.status).toBe(status);
      const answer = (await res.json()) as { message: string; status: number };
      expect(answer).toMatchObject({ status, message: expect.stringMatching(message) });
    };
    await expectRefusal(await send(body, {}), 401, /must be signed: send Github-Public-Key-Identifier and Github-Public-Key-Signature/);
    await expectRefusal(await send(body, { 'github-public-key-identifier': keyA.id }), 401, /must be signed/);
    // Signed by another key than the one named; a body changed after signing; a signature that is not base64.
    await expectRefusal(await report(body, keyB, keyA.id), 401, /signature does not verify/);
    await expectRefusal(await send(body.replace('"x"', '"y"'), { 'github-public-key-identifier': keyA.id, 'github-public-key-signature': signature }), 401, /signature does not verify/);
    await expectRefusal(await send(body, { 'github-public-key-identifier': keyA.id, 'github-public-key-signature': '%%%' }), 401, /not base64/);
    await expectRefusal(await report(body, keyA, 'f'.repeat(64)), 401, /publishes no key with the identifier/);
    // The content type is checked before anything is read.
    const plain = await fetchA(`${a.url}/api/v1/leaked-tokens/github`, { method: 'POST', headers: { 'content-type': 'text/plain', 'github-public-key-identifier': keyA.id, 'github-public-key-signature': signature }, body });
    await expectRefusal(plain, 415, /must be application\/json/);
    // Larger than leakedTokens.maxBodyBytes (64 KiB here): refused before the signature is verified.
    const huge = JSON.stringify([{ token: 'x', type: 't', url: 'u'.repeat(70_000), source: 'content' }]);
    await expectRefusal(await send(huge, { 'github-public-key-identifier': keyA.id, 'github-public-key-signature': signature }), 413, /too large/);
    // Unsigned, it is refused before its body is read at all.
    await expectRefusal(await send(huge, {}), 401, /must be signed/);
    // Signed, but not JSON, or not the report's shape, or too many tokens.
    await expectRefusal(await report('[{"token":'), 400, /not valid JSON/);
    const wrongShape = await report({ token: 'x' });
    expect(wrongShape.status).toBe(400);
    expect(((await wrongShape.json()) as { code?: string; errors: unknown[] }).errors.length).toBeGreaterThan(0);
    const missingUrl = await report([{ token: 'x', type: 't', source: 'content' }]);
    expect(missingUrl.status).toBe(400);
    expect(JSON.stringify(await missingUrl.json())).toContain('url');
    const tooMany = await report(Array.from({ length: 51 }, () => ({ token: 'x', type: 't', url: '', source: 'content' })));
    expect(tooMany.status).toBe(400);
    // A reporter that is not configured; another method.
    await expectRefusal(await report(body, keyA, keyA.id).then(() => send(body, { 'github-public-key-identifier': keyA.id, 'github-public-key-signature': signature }, 'gitlab')), 404, /No such reporter/);
    const get = await fetch(`${a.url}/api/v1/leaked-tokens/github`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });

  it('reads the keys again for an unknown identifier at most once a minute, and so picks up a new key once', async () => {
    const readsBefore = keyReads;
    const body = JSON.stringify([]);
    // Forged identifiers within the minute since the last read cost the key endpoint nothing.
    for (let i = 0; i < 20; i++) expect((await report(body, keyA, createHash('sha256').update(`forged ${i}`).digest('hex'))).status).toBe(401);
    expect(keyReads).toBe(readsBefore);
    // GitHub publishes a new key; past the minute, the first report signed with it reads the keys again, once.
    published = [keyA, keyB];
    clockOffsetMs += 61_000;
    const session = await login('alice', 'alice-password');
    const rotated = await report([{ token: session, type: 'tessera_session_token', url: 'https://github.com/o/r/blob/2/b', source: 'content' }], keyB);
    expect(rotated.status).toBe(200);
    expect(await rotated.json()).toEqual([{ token_raw: session, token_type: 'tessera_session_token', label: 'true_positive' }]);
    expect(keyReads).toBe(readsBefore + 1);
    expect((await report(body, keyB)).status).toBe(200);
    expect((await report(body, keyA)).status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await report(body, keyA, createHash('sha256').update(`forged again ${i}`).digest('hex'))).status).toBe(401);
    expect(keyReads).toBe(readsBefore + 1);
    // A key withdrawn from the endpoint stops working once the keys are read again.
    published = [keyB];
    clockOffsetMs += 61_000;
    expect((await report(body, keyA, 'f'.repeat(64))).status).toBe(401);
    expect(keyReads).toBe(readsBefore + 2);
    expect((await report(body, keyA)).status).toBe(401);
    expect((await report(body, keyB)).status).toBe(200);
  });

  it('every answer was the one the OpenAPI document describes', async () => {
    expect([...fetchA.checked].sort()).toEqual(
      expect.arrayContaining(['POST /api/v1/leaked-tokens/{reporter} 200', 'POST /api/v1/leaked-tokens/{reporter} 400', 'POST /api/v1/leaked-tokens/{reporter} 401', 'POST /api/v1/leaked-tokens/{reporter} 404', 'POST /api/v1/leaked-tokens/{reporter} 413', 'POST /api/v1/leaked-tokens/{reporter} 415']),
    );
    // The keys files stay where the test made them (nothing of Tessera's wrote there).
    expect((await readFile(keyA.file, 'utf8')).startsWith('-----BEGIN EC PRIVATE KEY-----')).toBe(true);
  });
});
