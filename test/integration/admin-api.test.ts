import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { runTessera } from '../support/cli-process.ts';
import { approveDevice } from '../support/device-approval.ts';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { basic, FORM, introspectAs } from '../support/token-requests.ts';
import { documentedFetch } from '../support/documented-answers.ts';

const JWT_API = 'https://records.example.org';
type Json = Record<string, unknown>;

// The admin API (/api/v1/admin/) on the real PostgreSQL and Redis, with two nodes sharing them:
// who may call it, what each call does to the accounts, clients and keys it names, and the
// audit trail it leaves. OAuth logins go through openid-client and the device pages.
describe('the admin API', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let node: TestTessera;
  let other: TestTessera;
  let adminSession: string;
  let adminId: string;
  let recordsApiSecret: string;
  let storeEnv: Record<string, string>;
  const by = { actor: 'test' };
  // Every answer of the first node below is held to /openapi.json (test/support/documented-answers.ts).
  const fetch = documentedFetch(() => node.url);

  const login = async (base: string, username: string, password: string, scope?: string) => {
    const res = await fetch(`${base}/users/${username}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password, ...(scope ? { scope } : {}) }) });
    return { status: res.status, session: String(((await res.json()) as { session?: string }).session) };
  };
  const admin = async (path: string, init: { method?: string; body?: unknown; session?: string; base?: string; headers?: Record<string, string> } = {}) => {
    const res = await fetch(`${init.base ?? node.url}/api/v1/admin${path}`, {
      method: init.method ?? 'GET',
      headers: { 'x-session': init.session ?? adminSession, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as Json };
  };
  const auditOf = async (subject: string) => node.core.audit.listFor(subject, { limit: 50 });

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    const shared = {
      ISSUER: `http://127.0.0.1:${port}`,
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      TESSERA_REDIS_PREFIX: prefix,
      TESSERA_KEY_SECRET: randomBytes(24).toString('base64url'),
      TESSERA_COOKIE_KEYS: randomBytes(24).toString('base64url'),
      TESSERA_DEVICE_POLL_INTERVAL: '1',
      TESSERA_LOGIN_FAILURES_PER_USERNAME: '3',
    };
    storeEnv = shared;
    const resources = { oauth: { resources: { 'urn:tessera:api': { format: 'opaque' }, [JWT_API]: { format: 'jwt' } } } };
    node = await startTestTessera({ ...shared, PORT: String(port) }, resources);
    other = await startTestTessera({ ...shared, PORT: '0' }, resources);
    // The first account (TESSERA_ADMIN_PASSWORD of the test Tessera) holds every scope, admin included.
    const first = await login(node.url, 'admin', 'initial-admin-password');
    expect(first.status).toBe(200);
    adminSession = first.session;
    adminId = (await node.core.accounts.findUser('admin'))!.id;
    await node.core.clients.create({ clientId: 'cli', name: 'Repository CLI', kind: 'device', scopes: ['read', 'offline_access'], defaultResource: JWT_API }, by);
    recordsApiSecret = (await node.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server', scopes: ['read'] }, by)).secret!;
  }, 60_000);
  afterAll(async () => {
    await Promise.all([node?.stop(), other?.stop()]);
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  describe('who may call it', () => {
    it('refuses no credential (401), a personal token even of an admin (403), an account without the admin scope (403), and an admin session that left the scope out (403)', async () => {
      expect((await fetch(`${node.url}/api/v1/admin/users`)).status).toBe(401);

      const created = await fetch(`${node.url}/api/v1/tokens`, { method: 'POST', headers: { 'x-session': adminSession, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'admin script' }) });
      const pat = String(((await created.json()) as Json).token);
      const withPat = await admin('/users', { headers: { authorization: `Bearer ${pat}` }, session: '' });
      expect(withPat.status).toBe(403);
      expect(withPat.body.message).toMatch(/personal access token cannot administer/);

      await node.core.accounts.createUser({ username: 'plain', password: 'plain-password', scopes: ['read'] }, by);
      const plain = await login(node.url, 'plain', 'plain-password');
      const refused = await admin('/users', { session: plain.session });
      expect(refused.status).toBe(403);
      expect(refused.body.message).toMatch(/"admin" scope/);

      const readOnly = await login(node.url, 'admin', 'initial-admin-password', 'read');
      expect((await admin('/users', { session: readOnly.session })).status).toBe(403);
      expect((await admin('/users')).status).toBe(200);
    });

    it('never tells a resource server of the admin scope, and never puts it in a personal token', async () => {
      const introspected = await introspectAs(node, { id: 'records-api', secret: recordsApiSecret }, adminSession);
      expect(introspected.active).toBe(true);
      expect(String(introspected.scope).split(' ')).not.toContain('admin');
      const res = await fetch(`${node.url}/api/v1/tokens`, { method: 'POST', headers: { 'x-session': adminSession, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'too much', scopes: ['admin'] }) });
      expect(res.status).toBe(400);
    });
  });

  describe('users', () => {
    it('creates an account (audited with the administrator as actor), refuses a taken name and names every bad field', async () => {
      const created = await admin('/users', { method: 'POST', body: { username: 'sr-carol', email: 'carol@example.org', password: 'carol-password', scopes: ['read', 'deposit:write'] } });
      expect(created.status).toBe(201);
      expect(created.headers.get('location')).toBe(`/api/v1/admin/users/${created.body.id}`);
      expect(created.body).toMatchObject({ username: 'sr-carol', email: 'carol@example.org', scopes: ['read', 'deposit:write'], disabled: false });
      expect(JSON.stringify(created.body)).not.toContain('carol-password');
      expect((await auditOf(`user:${created.body.id}`))[0]).toMatchObject({ actor: `user:${adminId}`, action: 'user.created' });

      expect((await admin('/users', { method: 'POST', body: { username: 'SR-CAROL', password: 'another-password' } })).status).toBe(409);
      const bad = await admin('/users', { method: 'POST', body: { username: ' x', email: 'not-mail', password: 'short', scopes: ['nope'] } });
      expect(bad.status).toBe(400);
      expect((bad.body.errors as { field: string }[]).map((e) => e.field).sort()).toEqual(['email', 'password', 'scopes.0', 'username']);
    });

    it('lists accounts a page at a time, by a part of the username or e-mail, each exactly once', async () => {
      for (const name of ['sr-dave', 'sr-erin', 'sr-frank', 'sr-grace']) {
        await node.core.accounts.createUser({ username: name, email: `${name.slice(3)}@lab.example.org`, password: `${name}-password` }, by);
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await admin(`/users?q=SR-&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        expect(page.status).toBe(200);
        seen.push(...(page.body.users as { username: string }[]).map((u) => u.username));
        cursor = page.body.next_cursor as string | null;
        pages += 1;
      } while (cursor);
      expect(seen).toEqual(['sr-carol', 'sr-dave', 'sr-erin', 'sr-frank', 'sr-grace']);
      expect(pages).toBe(3);
      expect(((await admin('/users?q=lab.example')).body.users as unknown[]).length).toBe(4);
      // A search for the LIKE wildcards finds only names that hold them.
      expect(((await admin('/users?q=%25')).body.users as unknown[]).length).toBe(0);
      expect((await admin('/users?cursor=!!!')).status).toBe(400);
      expect((await admin('/users?limit=0')).status).toBe(400);
    });

    it('shows, changes e-mail and scopes, disables (sign-in refused) and enables an account', async () => {
      const user = await node.core.accounts.findUser('sr-dave');
      const path = `/users/${user!.id}`;
      expect((await admin(path)).body).toMatchObject({ username: 'sr-dave', email: 'dave@lab.example.org' });
      expect((await admin('/users/00000000-0000-4000-8000-000000000000')).status).toBe(404);
      expect((await admin('/users/not-an-id')).status).toBe(404);

      const changed = await admin(path, { method: 'PATCH', body: { email: 'dave@example.org', scopes: ['read', 'deposit:actions'] } });
      expect(changed.body).toMatchObject({ email: 'dave@example.org', scopes: ['read', 'deposit:actions'] });
      expect((await admin(path, { method: 'PATCH', body: { email: 'carol@example.org' } })).status).toBe(409);
      expect((await admin(path, { method: 'PATCH', body: { nickname: 'd' } })).status).toBe(400);
      expect((await admin(path, { method: 'PATCH', body: {} })).status).toBe(400);

      expect((await admin(path, { method: 'PATCH', body: { disabled: true } })).body).toMatchObject({ disabled: true });
      expect((await login(node.url, 'sr-dave', 'sr-dave-password')).status).toBe(401);
      expect((await admin(path, { method: 'PATCH', body: { disabled: false } })).body).toMatchObject({ disabled: false });
      expect((await login(node.url, 'sr-dave', 'sr-dave-password')).status).toBe(200);

      const actions = (await auditOf(`user:${user!.id}`)).map((event) => [event.actor, event.action]);
      expect(actions).toEqual(expect.arrayContaining([
        [`user:${adminId}`, 'user.email_changed'],
        [`user:${adminId}`, 'user.scopes_changed'],
        [`user:${adminId}`, 'user.disabled'],
        [`user:${adminId}`, 'user.enabled'],
      ]));
    });

    it('sets a new password, which ends the account\'s sessions', async () => {
      const user = await node.core.accounts.findUser('sr-erin');
      const before = await login(node.url, 'sr-erin', 'sr-erin-password');
      expect((await admin(`/users/${user!.id}`, { method: 'PATCH', body: { password: 'erin-new-password' } })).status).toBe(200);
      expect((await fetch(`${node.url}/api/v1/sessions`, { headers: { 'x-session': before.session } })).status).toBe(401);
      expect((await login(node.url, 'sr-erin', 'erin-new-password')).status).toBe(200);
    });

    it('lifts a lockout', async () => {
      const user = await node.core.accounts.findUser('sr-frank');
      for (let i = 0; i < 4; i++) await login(node.url, 'sr-frank', 'wrong-password');
      expect((await login(node.url, 'sr-frank', 'sr-frank-password')).status).toBe(429);
      const unlocked = await admin(`/users/${user!.id}/unlock`, { method: 'POST' });
      expect(unlocked.status).toBe(200);
      expect(unlocked.body).toMatchObject({ locked_sources: 1 });
      expect((await login(node.url, 'sr-frank', 'sr-frank-password')).status).toBe(200);
      expect((await auditOf(`user:${user!.id}`)).find((event) => event.action === 'user.unlocked')).toMatchObject({ actor: `user:${adminId}` });
    });

    it('ends every session and device login of an account: its tokens stop working on every node', async () => {
      const user = await node.core.accounts.findUser('sr-grace');
      const api = await login(node.url, 'sr-grace', 'sr-grace-password');
      const config = await oidc.discovery(new URL(node.config.issuer), 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      const start = await oidc.initiateDeviceAuthorization(config, { scope: 'read offline_access' });
      await approveDevice(node.config.issuer, start.user_code, 'sr-grace', 'sr-grace-password');
      const tokens = await oidc.pollDeviceAuthorizationGrant(config, start);
      expect((await introspectAs(other, { id: 'records-api', secret: recordsApiSecret }, tokens.access_token)).active).toBe(true);

      const ended = await admin(`/users/${user!.id}/sign-out`, { method: 'POST' });
      expect(ended.status).toBe(200);
      expect(ended.body.logins).toBe(1);
      expect(ended.body.sessions).toBeGreaterThanOrEqual(1);
      expect((await fetch(`${other.url}/api/v1/sessions`, { headers: { 'x-session': api.session } })).status).toBe(401);
      expect((await introspectAs(other, { id: 'records-api', secret: recordsApiSecret }, tokens.access_token)).active).toBe(false);
      expect((await introspectAs(other, { id: 'records-api', secret: recordsApiSecret }, tokens.refresh_token!)).active).toBe(false);
      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      expect((await auditOf(`user:${user!.id}`))[0]).toMatchObject({ actor: `user:${adminId}`, action: 'user.signed_out', details: { logins: 1 } });
    });

    it('deletes an account: its personal tokens and sessions end, the audit log keeps what happened', async () => {
      await node.core.accounts.createUser({ username: 'sr-heidi', password: 'sr-heidi-password' }, by);
      const heidi = await login(node.url, 'sr-heidi', 'sr-heidi-password');
      const created = await fetch(`${node.url}/api/v1/tokens`, { method: 'POST', headers: { 'x-session': heidi.session, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'upload' }) });
      const pat = String(((await created.json()) as Json).token);
      expect((await introspectAs(other, { id: 'records-api', secret: recordsApiSecret }, pat)).active).toBe(true);
      const id = (await node.core.accounts.findUser('sr-heidi'))!.id;

      expect((await admin(`/users/${id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await admin(`/users/${id}`)).status).toBe(404);
      expect((await introspectAs(other, { id: 'records-api', secret: recordsApiSecret }, pat)).active).toBe(false);
      expect((await fetch(`${node.url}/api/v1/me`, { headers: { 'x-session': heidi.session } })).status).toBe(401);
      expect((await auditOf(`user:${id}`))[0]).toMatchObject({ actor: `user:${adminId}`, action: 'user.deleted', details: { username: 'sr-heidi' } });
      expect((await admin(`/users/${id}`, { method: 'DELETE' })).status).toBe(404);
    });

    it('keeps an administrator from disabling, deleting or demoting their own account', async () => {
      expect((await admin(`/users/${adminId}`, { method: 'PATCH', body: { disabled: true } })).status).toBe(409);
      expect((await admin(`/users/${adminId}`, { method: 'PATCH', body: { scopes: ['read'] } })).status).toBe(409);
      expect((await admin(`/users/${adminId}`, { method: 'DELETE' })).status).toBe(409);
      expect((await admin(`/users/${adminId}`)).body).toMatchObject({ disabled: false });
    });
  });

  describe('the CLI, on the same services', () => {
    it('sets an e-mail, ends every sign-in and deletes an account, each audited with the operator as actor', async () => {
      await node.core.accounts.createUser({ username: 'sr-judy', password: 'sr-judy-password' }, by);
      const judy = await login(node.url, 'sr-judy', 'sr-judy-password');
      const id = (await node.core.accounts.findUser('sr-judy'))!.id;

      const email = await runTessera(['user', 'email', 'sr-judy', 'judy@example.org'], storeEnv);
      expect(email).toMatchObject({ code: 0, stdout: "sr-judy's e-mail is now judy@example.org.\n" });
      expect((await admin(`/users/${id}`)).body).toMatchObject({ email: 'judy@example.org' });

      const signedOut = await runTessera(['user', 'sign-out', 'sr-judy'], storeEnv);
      expect(signedOut).toMatchObject({ code: 0, stdout: 'Ended 1 session and 0 logins of sr-judy.\n' });
      expect((await fetch(`${other.url}/api/v1/sessions`, { headers: { 'x-session': judy.session } })).status).toBe(401);

      expect((await runTessera(['user', 'delete', 'sr-judy'], storeEnv)).code).toBe(0);
      expect((await admin(`/users/${id}`)).status).toBe(404);
      const actions = (await auditOf(`user:${id}`)).map((event) => event.action);
      expect(actions.slice(0, 3)).toEqual(['user.deleted', 'user.signed_out', 'user.email_changed']);
      expect((await auditOf(`user:${id}`))[0]!.actor).toMatch(/^cli:/);
    }, 60_000);
  });

  describe('clients', () => {
    it('registers a service client (its secret answered once), rotates the secret and deletes it: its tokens end', async () => {
      const created = await admin('/clients', { method: 'POST', body: { client_id: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] } });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ client_id: 'harvester', kind: 'service', token_endpoint_auth_method: 'client_secret_basic', source: 'database' });
      const secret = String(created.body.client_secret);
      expect((await admin('/clients/harvester')).body).not.toHaveProperty('client_secret');
      expect(((await admin('/clients')).body.clients as { client_id: string }[]).map((c) => c.client_id)).toEqual(expect.arrayContaining(['cli', 'records-api', 'harvester']));

      const grant = (clientSecret: string) => fetch(`${node.url}/oauth/token`, { method: 'POST', headers: { ...FORM, authorization: basic('harvester', clientSecret) }, body: 'grant_type=client_credentials&scope=read' });
      const token = String(((await (await grant(secret)).json()) as Json).access_token);
      const rotated = await admin('/clients/harvester/secret', { method: 'POST' });
      expect(rotated.status).toBe(201);
      expect((await grant(secret)).status).toBe(401);
      expect((await grant(String(rotated.body.client_secret))).status).toBe(200);
      expect((await introspectAs(other, { id: 'records-api', secret: recordsApiSecret }, token)).active).toBe(false);

      expect((await admin('/clients/harvester', { method: 'PATCH', body: { may_introspect: true } })).body).toMatchObject({ may_introspect: true });
      expect((await admin('/clients/harvester', { method: 'DELETE' })).status).toBe(204);
      expect((await admin('/clients/harvester')).status).toBe(404);
      const actions = (await auditOf('client:harvester')).map((event) => [event.actor, event.action]);
      expect(actions.every(([actor]) => actor === `user:${adminId}`)).toBe(true);
      expect(actions.map(([, action]) => action)).toEqual(expect.arrayContaining(['client.created', 'client.secret_rotated', 'client.deleted']));
    });

    it('names bad fields as the API calls them, and refuses what a kind cannot have', async () => {
      const bad = await admin('/clients', { method: 'POST', body: { name: 'Portal', kind: 'web', redirect_uris: ['http://portal.example.org/cb'], access_token_ttl_seconds: -1 } });
      expect(bad.status).toBe(400);
      const fields = (bad.body.errors as { field: string }[]).map((e) => e.field);
      expect(fields).toEqual(expect.arrayContaining(['redirect_uris.0', 'access_token_ttl_seconds']));
      expect((await admin('/clients/cli/secret', { method: 'POST' })).status).toBe(409);
      expect((await admin('/clients/nobody', { method: 'DELETE' })).status).toBe(404);
      // A body that is not JSON, or is larger than the limit, is refused before anything is read.
      const plain = await fetch(`${node.url}/api/v1/admin/clients`, { method: 'POST', headers: { 'x-session': adminSession, 'content-type': 'text/plain' }, body: 'name=Portal' });
      expect(plain.status).toBe(415);
      const huge = await admin('/clients', { method: 'POST', body: { name: 'x'.repeat(200_000), kind: 'service' } });
      expect(huge.status).toBe(413);
    });

    it("replaces a private_key_jwt client's public keys: assertions signed with the old key stop working", async () => {
      const keyPair = async (kid: string) => {
        const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
        return { publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }, privateKey, kid };
      };
      const [first, second] = [await keyPair('first'), await keyPair('second')];
      const created = await admin('/clients', { method: 'POST', body: { client_id: 'keyed-harvester', name: 'Keyed harvester', kind: 'service', scopes: ['read'], jwks: { keys: [first.publicJwk] } } });
      expect(created.body).toMatchObject({ token_endpoint_auth_method: 'private_key_jwt', client_secret: null });
      const tokenEndpoint = `${node.config.issuer}/oauth/token`;
      const grant = async (key: Pick<Awaited<ReturnType<typeof keyPair>>, 'privateKey' | 'kid'>) => {
        const assertion = await new SignJWT({})
          .setProtectedHeader({ alg: 'ES256', kid: key.kid })
          .setIssuer('keyed-harvester')
          .setSubject('keyed-harvester')
          .setAudience(tokenEndpoint)
          .setJti(randomBytes(12).toString('hex'))
          .setIssuedAt()
          .setExpirationTime('1m')
          .sign(key.privateKey);
        const body = new URLSearchParams({ grant_type: 'client_credentials', scope: 'read', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion });
        return (await fetch(`${node.url}/oauth/token`, { method: 'POST', headers: FORM, body })).status;
      };
      expect(await grant(first)).toBe(200);

      const replaced = await admin('/clients/keyed-harvester/jwks', { method: 'PUT', body: { keys: [second.publicJwk] } });
      expect(replaced.status).toBe(200);
      expect(replaced.body).toMatchObject({ jwks: { keys: [expect.objectContaining({ kid: 'second' })] } });
      expect(await grant(second)).toBe(200);
      expect(await grant(first)).toBe(401);
      // A private key is refused, as the CLI refuses it.
      const leaked = await admin('/clients/keyed-harvester/jwks', { method: 'PUT', body: { keys: [{ ...(await exportJWK(first.privateKey)), kid: 'leaked' }] } });
      expect(leaked.status).toBe(400);
      expect((await admin('/clients/nobody/jwks', { method: 'PUT', body: { keys: [second.publicJwk] } })).status).toBe(404);
    });
  });

  describe('signing keys', () => {
    it('rotates the key: both running nodes sign with the new one and publish both, without a restart', async () => {
      const config = await oidc.discovery(new URL(node.config.issuer), 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      await node.core.accounts.createUser({ username: 'sr-ivan', password: 'sr-ivan-password' }, by);
      /** A device login of sr-ivan's: its JWT access token (the cli client's tokens are for JWT_API). */
      const deviceToken = async () => {
        const start = await oidc.initiateDeviceAuthorization(config, { scope: 'read' });
        await approveDevice(node.config.issuer, start.user_code, 'sr-ivan', 'sr-ivan-password');
        return (await oidc.pollDeviceAuthorizationGrant(config, start)).access_token;
      };
      const before = (await admin('/keys')).body.keys as { kid: string; state: string }[];
      expect(before).toHaveLength(1);
      const oldToken = await deviceToken();
      expect(decodeProtectedHeader(oldToken).kid).toBe(before[0]!.kid);

      const rotated = await admin('/keys/rotate', { method: 'POST' });
      expect(rotated.status).toBe(201);
      expect(rotated.body).toMatchObject({ announced: true, retiring: [{ kid: before[0]!.kid, state: 'retiring' }] });
      const newKid = String(rotated.body.kid);

      // Each node hears of it through Redis; wait for the other node's published set to change.
      const published = async (base: string) => ((await (await fetch(`${base}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
      for (const base of [node.url, other.url]) {
        for (let i = 0; i < 200 && !(await published(base)).includes(newKid); i++) await new Promise((resolve) => setTimeout(resolve, 50));
        expect((await published(base)).sort()).toEqual([before[0]!.kid, newKid].sort());
      }
      const newToken = await deviceToken();
      expect(decodeProtectedHeader(newToken).kid).toBe(newKid);
      for (const token of [oldToken, newToken]) expect((await introspectAs(other, { id: 'records-api', secret: recordsApiSecret }, token)).active).toBe(true);
      expect((await auditOf(`key:${newKid}`))[0]).toMatchObject({ actor: `user:${adminId}`, action: 'keys.rotated' });
    }, 60_000);
  });

  describe('the audit log', () => {
    it('lists events by user, action prefix and time a page at a time, exports them as JSON lines, and names a bad filter', async () => {
      const since = new Date().toISOString();
      await node.core.accounts.createUser({ username: 'audited-amy', password: 'audited-amy-password', scopes: ['read'] }, by);
      const amy = (await node.core.accounts.findUser('audited-amy'))!;
      expect((await login(node.url, 'audited-amy', 'not-her-password')).status).toBe(401);
      expect((await login(node.url, 'audited-amy', 'audited-amy-password')).status).toBe(200);
      await node.core.audit.settled();

      const query = `user_id=${amy.id}&action=sign_in.&since=${encodeURIComponent(since)}`;
      const all = await admin(`/audit?${query}`);
      expect(all.status).toBe(200);
      expect(all.headers.get('cache-control')).toBe('no-store');
      const events = all.body.events as { action: string; actor: string; details: Json }[];
      expect(events.map((e) => e.action)).toEqual(['sign_in.succeeded', 'sign_in.failed']);
      expect(events[1]).toMatchObject({ actor: 'ip:127.0.0.1', details: { via: 'api', reason: 'wrong_password' } });
      expect(all.body.next_cursor).toBeNull();

      // A page of one, then the next by its cursor.
      const first = await admin(`/audit?${query}&limit=1`);
      expect((first.body.events as Json[]).map((e) => e.action)).toEqual(['sign_in.succeeded']);
      const second = await admin(`/audit?${query}&limit=1&cursor=${String(first.body.next_cursor)}`);
      expect((second.body.events as Json[]).map((e) => e.action)).toEqual(['sign_in.failed']);
      expect(second.body.next_cursor).toBeNull();

      const exported = await fetch(`${node.url}/api/v1/admin/audit/export?user_id=${amy.id}`, { headers: { 'x-session': adminSession } });
      expect(exported.status).toBe(200);
      expect(exported.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
      expect(exported.headers.get('content-disposition')).toBe('attachment; filename="tessera-audit.jsonl"');
      const lines = (await exported.text()).trimEnd().split('\n').map((line) => JSON.parse(line) as { id: number; action: string });
      expect(lines.map((l) => l.action).sort()).toEqual(['session.created', 'sign_in.failed', 'sign_in.succeeded', 'user.created']);
      // Newest first.
      expect(lines.map((l) => l.id)).toEqual(lines.map((l) => l.id).sort((a, b) => b - a));
      expect(JSON.stringify(lines)).not.toMatch(/audited-amy-password|not-her-password/);

      const bad = await admin('/audit?action=sign_in%25&client_id=');
      expect(bad.status).toBe(400);
      expect((bad.body.errors as { field: string }[]).map((e) => e.field).sort()).toEqual(['action', 'client_id']);
      // By username (or e-mail) as well as by id; a name no account has is 404.
      const byName = await admin(`/audit?user=AUDITED-AMY&action=sign_in.&since=${encodeURIComponent(since)}`);
      expect((byName.body.events as Json[]).map((e) => e.action)).toEqual(['sign_in.succeeded', 'sign_in.failed']);
      expect((await admin('/audit?user=amy')).status).toBe(404);
      expect((await admin(`/audit?user=audited-amy&user_id=${amy.id}`)).status).toBe(400);
      expect((await admin('/audit?nickname=amy')).status).toBe(400);
      expect((await admin('/audit?cursor=bm9wZQ')).status).toBe(400);
      expect((await fetch(`${node.url}/api/v1/admin/audit/export?since=yesterday`, { headers: { 'x-session': adminSession } })).status).toBe(400);
      // Only administrators: amy's own session is refused.
      expect((await admin('/audit', { session: (await login(node.url, 'audited-amy', 'audited-amy-password')).session })).status).toBe(403);
    });
  });

  it('answered as /openapi.json says, every time (the answers checked above)', () => {
    expect([...fetch.checked]).toEqual(expect.arrayContaining([
      'GET /api/v1/admin/users 200', 'GET /api/v1/admin/users 400', 'GET /api/v1/admin/users 401', 'GET /api/v1/admin/users 403', 'POST /api/v1/admin/users 201', 'POST /api/v1/admin/users 409',
      'GET /api/v1/admin/users/{id} 200', 'GET /api/v1/admin/users/{id} 404', 'PATCH /api/v1/admin/users/{id} 200', 'PATCH /api/v1/admin/users/{id} 409', 'DELETE /api/v1/admin/users/{id} 204',
      'POST /api/v1/admin/users/{id}/unlock 200', 'POST /api/v1/admin/users/{id}/sign-out 200',
      'GET /api/v1/admin/clients 200', 'POST /api/v1/admin/clients 201', 'GET /api/v1/admin/clients/{id} 200', 'PATCH /api/v1/admin/clients/{id} 200', 'DELETE /api/v1/admin/clients/{id} 204', 'POST /api/v1/admin/clients/{id}/secret 201',
      'POST /api/v1/admin/clients 413', 'POST /api/v1/admin/clients 415', 'PUT /api/v1/admin/clients/{id}/jwks 200', 'PUT /api/v1/admin/clients/{id}/jwks 400', 'PUT /api/v1/admin/clients/{id}/jwks 404',
      'GET /api/v1/admin/keys 200', 'POST /api/v1/admin/keys/rotate 201',
      'GET /api/v1/admin/audit 200', 'GET /api/v1/admin/audit 400', 'GET /api/v1/admin/audit 403', 'GET /api/v1/admin/audit/export 200', 'GET /api/v1/admin/audit/export 400',
    ]));
  });
});
