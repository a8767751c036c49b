import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as oidc from 'openid-client';
import { approveDevice } from '../support/device-approval.ts';
import type { ServerProcess } from '../support/server-process.ts';
import type { TestTessera } from '../support/start-tessera.ts';
import { introspectAs } from '../support/token-requests.ts';
import { startTwoNodes, type TwoNodes } from '../support/two-nodes.ts';

const JWT_API = 'https://records.example.org';
/** The issue's bound: a revocation on one node is honoured by introspection on every node within this. */
const PROPAGATION_BOUND_MS = 100;

// Two Tessera processes on one PostgreSQL database and one Redis prefix, as two nodes behind a
// load balancer: node A is this process (so the test can end credentials through its services as
// well as over HTTP), node B is `node src/main.ts` in a child process. Every credential kind is
// introspected on B until B has it cached, ended on A, and must read inactive on B within 100 ms.
// B's cache keeps active answers for 60 s, so only the invalidation can make it let go in time.
describe('introspection across two Tessera processes sharing Redis and PostgreSQL', () => {
  let nodes: TwoNodes;
  let a: TestTessera;
  let b: ServerProcess;
  let issuer: URL;
  let deviceConfig: oidc.Configuration;
  const by = { actor: 'test' };
  let rsSecret: string;
  let serviceSecret: string;

  beforeAll(async () => {
    nodes = await startTwoNodes({
      config: { oauth: { resources: { 'urn:tessera:api': { format: 'opaque' }, [JWT_API]: { format: 'jwt' } } } },
      settings: { TESSERA_DEVICE_POLL_INTERVAL: '1', TESSERA_INTROSPECTION_CACHE_TTL: '60' },
    });
    ({ a, b, issuer } = nodes);

    await a.core.accounts.createUser({ username: 'alice', password: 'alice-password', scopes: ['read', 'deposit:write'] }, by);
    await a.core.accounts.createUser({ username: 'bob', password: 'bob-password-long', scopes: ['read'] }, by);
    rsSecret = (await a.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    serviceSecret = (await a.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
    await a.core.clients.create({ clientId: 'cli', name: 'Repository CLI', kind: 'device', scopes: ['read', 'deposit:write', 'offline_access'] }, by);
    deviceConfig = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  }, 60_000);

  afterAll(async () => {
    await nodes?.stop();
  });

  const introspect = (base: string, token: string) => introspectAs({ url: base }, { id: 'records-api', secret: rsSecret }, token);

  /**
   * Introspects on B until it has the answer cached, ends the credential on A, then asks B again
   * until it answers inactive. The bound is on when a question reaches B, not on how long the
   * answers take to come back (the test's own requests queue behind other suites on a busy
   * machine): an introspection sent to B more than PROPAGATION_BOUND_MS after the revocation
   * returned on A must read inactive.
   */
  async function revokedAcrossNodes(tokens: string[], end: () => Promise<void>) {
    for (const token of tokens) {
      expect(await introspect(b.url, token)).toMatchObject({ active: true });
      expect(await introspect(b.url, token)).toMatchObject({ active: true });
      expect(await introspect(a.url, token)).toMatchObject({ active: true });
    }
    await end();
    const endedAt = performance.now();
    for (const token of tokens) {
      // The node that ended it drops its own cached answer before answering anything else.
      expect(await introspect(a.url, token)).toEqual({ active: false });
      for (;;) {
        const sentAfter = performance.now() - endedAt;
        const answer = await introspect(b.url, token);
        if (!answer.active) {
          expect(answer).toEqual({ active: false });
          break;
        }
        if (sentAfter > PROPAGATION_BOUND_MS) throw new Error(`node B still answered active to a question sent ${Math.round(sentAfter)} ms after the revocation on node A`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  }

  async function login(username: string, password: string): Promise<string> {
    const res = await fetch(`${a.url}/users/${username}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password }) });
    expect(res.status).toBe(200);
    return String(((await res.json()) as { session: string }).session);
  }

  async function deviceTokens(resource?: string) {
    const start = await oidc.initiateDeviceAuthorization(deviceConfig, { scope: 'read offline_access', ...(resource ? { resource } : {}) });
    await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const tokens = await oidc.pollDeviceAuthorizationGrant(deviceConfig, start);
    expect(tokens.refresh_token).toBeTruthy();
    return { access: tokens.access_token, refresh: tokens.refresh_token! };
  }

  async function revokeAtA(token: string, client: { id: string; secret?: string }) {
    const body = new URLSearchParams({ token, ...(client.secret ? {} : { client_id: client.id }) });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (client.secret) headers.authorization = `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`;
    const res = await fetch(`${a.url}/oauth/revoke`, { method: 'POST', headers, body });
    expect(res.status).toBe(200);
  }

  it('ends an API session (logout) on every node', async () => {
    const session = await login('alice', 'alice-password');
    await revokedAcrossNodes([session], async () => {
      const res = await fetch(`${a.url}/logout`, { method: 'POST', headers: { 'x-session': session } });
      expect(res.status).toBeLessThan(300);
    });
  });

  it('ends a personal access token (revoked in settings) on every node', async () => {
    const alice = (await a.core.accounts.findUser('alice'))!;
    const created = await a.core.personalTokens.create(alice, { name: 'two nodes', scopes: ['read'] }, by);
    await revokedAcrossNodes([created.token], async () => {
      await a.core.personalTokens.revoke(alice.id, created.record.id, by);
    });
  });

  it('ends a rotated personal access token on every node, while its successor is active', async () => {
    const alice = (await a.core.accounts.findUser('alice'))!;
    const created = await a.core.personalTokens.create(alice, { name: 'rotating', scopes: ['read'] }, by);
    let successor = '';
    await revokedAcrossNodes([created.token], async () => {
      successor = (await a.core.personalTokens.rotate(alice, created.record.id, by)).token;
    });
    expect(await introspect(b.url, successor)).toMatchObject({ active: true, credential_kind: 'personal_access_token' });
  });

  it('ends an opaque OAuth access token and a refresh token (RFC 7009 revocation) on every node', async () => {
    const first = await deviceTokens();
    expect(await introspect(b.url, first.access)).toMatchObject({ credential_kind: 'access_token' });
    await revokedAcrossNodes([first.access], () => revokeAtA(first.access, { id: 'cli' }));

    const second = await deviceTokens();
    expect(await introspect(b.url, second.refresh)).toMatchObject({ credential_kind: 'refresh_token' });
    await revokedAcrossNodes([second.refresh, second.access], () => revokeAtA(second.refresh, { id: 'cli' }));
  }, 30_000);

  it('ends a JWT access token with its grant (its refresh token revoked) on every node', async () => {
    const tokens = await deviceTokens(JWT_API);
    expect(tokens.access.split('.')).toHaveLength(3);
    expect(await introspect(b.url, tokens.access)).toMatchObject({ credential_kind: 'access_token', aud: JWT_API });
    await revokedAcrossNodes([tokens.access], () => revokeAtA(tokens.refresh, { id: 'cli' }));
  }, 30_000);

  it('ends a login revoked by its owner (Authorized logins, DELETE /api/v1/logins/{id}) on every node, opaque and JWT', async () => {
    const session = await login('alice', 'alice-password');
    for (const resource of [undefined, JWT_API]) {
      const before = new Set(((await (await fetch(`${a.url}/api/v1/logins`, { headers: { 'x-session': session } })).json()) as { logins: { id: string }[] }).logins.map((l) => l.id));
      const tokens = await deviceTokens(resource);
      const { logins } = (await (await fetch(`${a.url}/api/v1/logins`, { headers: { 'x-session': session } })).json()) as { logins: { id: string }[] };
      const added = logins.filter((l) => !before.has(l.id));
      expect(added).toHaveLength(1);
      await revokedAcrossNodes([tokens.access, tokens.refresh], async () => {
        expect((await fetch(`${a.url}/api/v1/logins/${added[0]!.id}`, { method: 'DELETE', headers: { 'x-session': session } })).status).toBe(204);
      });
    }
  }, 40_000);

  it('ends a JWT access token of a login, and the login, on every node when the JWT itself is revoked', async () => {
    const tokens = await deviceTokens(JWT_API);
    await revokedAcrossNodes([tokens.access, tokens.refresh], () => revokeAtA(tokens.access, { id: 'cli' }));
  }, 30_000);

  it('ends a client credentials JWT on every node when it is revoked, also on a node that never saw it', async () => {
    const serviceConfig = await oidc.discovery(issuer, 'harvester', serviceSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const [cached, unseen] = await Promise.all([1, 2].map(async () => (await oidc.clientCredentialsGrant(serviceConfig, { scope: 'read', resource: JWT_API })).access_token));
    expect(cached!.split('.')).toHaveLength(3);
    await revokedAcrossNodes([cached!], () => revokeAtA(cached!, { id: 'harvester', secret: serviceSecret }));
    // B verifies this one afresh: the revocation's record, not an invalidation, ends it there.
    await revokeAtA(unseen!, { id: 'harvester', secret: serviceSecret });
    expect(await introspect(b.url, unseen!)).toEqual({ active: false });
  });

  it("ends a consumed refresh token on every node when it is rotated", async () => {
    const tokens = await deviceTokens();
    let rotated = '';
    await revokedAcrossNodes([tokens.refresh], async () => {
      const refreshed = await oidc.refreshTokenGrant(deviceConfig, tokens.refresh);
      rotated = refreshed.refresh_token!;
    });
    expect(await introspect(b.url, rotated)).toMatchObject({ active: true, credential_kind: 'refresh_token' });
  }, 30_000);

  it('ends a client credentials token on every node when it is revoked, and all of them when the client is deleted', async () => {
    const serviceConfig = await oidc.discovery(issuer, 'harvester', serviceSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    const opaque = (await oidc.clientCredentialsGrant(serviceConfig, { scope: 'read' })).access_token;
    await revokedAcrossNodes([opaque], () => revokeAtA(opaque, { id: 'harvester', secret: serviceSecret }));

    const another = (await oidc.clientCredentialsGrant(serviceConfig, { scope: 'read' })).access_token;
    const jwt = (await oidc.clientCredentialsGrant(serviceConfig, { scope: 'read', resource: JWT_API })).access_token;
    expect(jwt.split('.')).toHaveLength(3);
    await revokedAcrossNodes([another, jwt], async () => {
      await a.core.clients.delete('harvester', by);
    });
  });

  it("ends every credential of a user on every node when the user is disabled, and B honours the password change's logout", async () => {
    const bob = (await a.core.accounts.findUser('bob'))!;
    const pat = (await a.core.personalTokens.create(bob, { name: 'bob', scopes: ['read'] }, by)).token;
    const session = await login('bob', 'bob-password-long');
    await revokedAcrossNodes([pat, session], async () => {
      await a.core.accounts.setDisabled('bob', true, by);
    });
    await a.core.accounts.setDisabled('bob', false, by);

    const again = await login('bob', 'bob-password-long');
    await revokedAcrossNodes([again], async () => {
      await a.core.accounts.changePassword('bob', 'bobs-new-password-0', by);
    });
  });
});
