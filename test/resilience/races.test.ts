import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { approveDevice } from '../support/device-approval.ts';
import { HttpBrowser } from '../support/http-browser.ts';
import { startTopology, TOPOLOGIES, type RedisTopology } from '../support/redis-topologies.ts';
import { reportFigures } from '../support/resilience-figures.ts';
import { uniqueRedisPrefix } from '../support/services.ts';
import { closeCore, startTesseraNodes, type TesseraNodes } from '../support/tessera-nodes.ts';
import { basic, FORM } from '../support/token-requests.ts';

// Single-use artefacts under concurrent redemption, on three Tessera processes sharing one store
// (each Redis topology, a PostgreSQL database):
// 50 redemptions of one device code, one authorization code, one refresh token (no reuse grace)
// and one personal-token rotation, sent at once and spread across the nodes. Exactly one may
// succeed; the others must be refused. Two successes would be two logins from one artefact.

const REDEMPTIONS = 50;
const NODES = 3;
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

interface Outcome {
  status: number;
  body: Record<string, unknown>;
}

/** How many answers of each kind ("200", "400 invalid_grant", …), for the report and the assertion message. */
function tally(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { status, body } of outcomes) {
    const key = status < 300 ? String(status) : `${status} ${String(body.error ?? body.code ?? '')}`.trim();
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

describe.each(TOPOLOGIES)(`${REDEMPTIONS} concurrent redemptions of one single-use artefact across ${NODES} nodes on %s Redis`, (topologyName) => {
  let topology: RedisTopology;
  let cluster: TesseraNodes;
  let callback: Server;
  let redirectUri: string;
  let portalSecret: string;
  let rsSecret: string;
  const password = `alice-${randomBytes(12).toString('base64url')}`;
  const node = (i: number) => cluster.nodes[i % NODES]!.url;

  beforeAll(async () => {
    callback = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('the portal'));
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
    redirectUri = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/cb`;
    topology = await startTopology(topologyName);
    cluster = await startTesseraNodes(NODES, { ...topology.env, TESSERA_REDIS_PREFIX: uniqueRedisPrefix() }, {
      TESSERA_DEVICE_POLL_INTERVAL: '1',
      // No reuse grace: a second redemption of a refresh token is reuse, refused.
      TESSERA_REFRESH_REUSE_GRACE_SECONDS: '0',
    });
    const core = await cluster.openCore();
    try {
      const by = { actor: 'test' };
      await core.accounts.createUser({ username: 'alice', password, scopes: ['read', 'deposit:write'] }, by);
      await core.clients.create({ clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);
      portalSecret = (await core.clients.create({ clientId: 'portal', name: 'Portal', kind: 'web', redirectUris: [redirectUri], scopes: ['read', 'offline_access'] }, by)).secret!;
      rsSecret = (await core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    } finally {
      await closeCore(core);
    }
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
    await topology?.stop();
    await new Promise((resolve) => callback?.close(resolve));
  });

  const post = async (base: string, path: string, body: URLSearchParams | string, headers: Record<string, string> = FORM): Promise<Outcome> => {
    const res = await fetch(new URL(path, base), { method: 'POST', headers, body });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  /** Sends `REDEMPTIONS` requests at once, round robin over the nodes. */
  const race = (send: (base: string) => Promise<Outcome>) => Promise.all(Array.from({ length: REDEMPTIONS }, (_, i) => send(node(i))));

  const introspect = async (token: string) => (await post(node(0), '/oauth/introspect', new URLSearchParams({ token }), { ...FORM, authorization: basic('records-api', rsSecret) })).body;

  /** A device code started on node A and approved on node B, its interval waited out. */
  async function approvedDeviceCode(): Promise<string> {
    const started = await post(node(0), '/oauth/device/code', new URLSearchParams({ client_id: 'cli', scope: 'read offline_access' }));
    expect(started.status).toBe(200);
    await approveDevice(cluster.issuer.origin, String(started.body.user_code), 'alice', password, 'approve', node(1));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    return String(started.body.device_code);
  }

  function expectOneSuccess(kind: string, outcomes: Outcome[], refused: RegExp) {
    const counts = tally(outcomes);
    reportFigures(`races on ${topologyName}: ${REDEMPTIONS} redemptions of one ${kind} across ${NODES} nodes answered ${JSON.stringify(counts)}`, {
      scenario: 'races',
      topology: topologyName,
      artefact: kind,
      redemptions: REDEMPTIONS,
      nodes: NODES,
      outcomes: counts,
    });
    const succeeded = outcomes.filter((o) => o.status < 300);
    expect({ kind, succeeded: succeeded.length, counts }).toEqual({ kind, succeeded: 1, counts });
    for (const o of outcomes.filter((o) => o.status >= 300)) expect(`${o.status} ${String(o.body.error ?? '')}`).toMatch(refused);
    return succeeded[0]!.body;
  }

  it('gives tokens for one device code once', async () => {
    const deviceCode = await approvedDeviceCode();
    const outcomes = await race((base) => post(base, '/oauth/token', new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: 'cli' })));
    // The losers are told the code is spent, or to slow down (the poll interval guard answers first).
    const tokens = expectOneSuccess('device_code', outcomes, /^400 (invalid_grant|slow_down|expired_token)$/);
    expect(await introspect(String(tokens.access_token))).toMatchObject({ active: true, username: 'alice' });
  });

  /** alice signs in on node B (as a load balancer might place her browser) and approves the portal: its code and verifier. */
  async function authorizationCode(scope: string): Promise<{ code: string; verifier: string }> {
    const verifier = randomBytes(32).toString('base64url');
    const authorize = new URL('/oauth/authorize', cluster.issuer);
    authorize.search = new URLSearchParams({
      client_id: 'portal',
      response_type: 'code',
      redirect_uri: redirectUri,
      scope,
      // OpenID Connect's rule, which oidc-provider keeps: offline_access only with prompt=consent.
      prompt: 'consent',
      state: 'race',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    const browser = new HttpBrowser(cluster.issuer.origin, {}, { from: cluster.issuer.origin, to: node(1) });
    const page = await browser.request(authorize.toString());
    expect(page.html).toMatch(/Authorize Portal/);
    const done = await browser.submit(page, { username: 'alice', password, decision: 'approve' });
    const code = new URL(done.url).searchParams.get('code');
    expect(code).toBeTruthy();
    return { code: code!, verifier };
  }

  const exchange = (base: string, { code, verifier }: { code: string; verifier: string }) =>
    post(base, '/oauth/token', new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }), { ...FORM, authorization: basic('portal', portalSecret) });

  it('exchanges one authorization code once', async () => {
    const issued = await authorizationCode('read');
    expectOneSuccess('authorization_code', await race((base) => exchange(base, issued)), /^400 invalid_grant$/);
  });

  it("refreshes one confidential client's refresh token once (oidc-provider's grant), without a reuse grace", async () => {
    const first = await exchange(node(2), await authorizationCode('read offline_access'));
    expect(first.status).toBe(200);
    const refreshToken = String(first.body.refresh_token);
    const outcomes = await race((base) => post(base, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }), { ...FORM, authorization: basic('portal', portalSecret) }));
    expectOneSuccess('refresh_token_confidential', outcomes, /^400 invalid_grant$/);
  });

  it("refreshes one public client's refresh token once, without a reuse grace", async () => {
    const deviceCode = await approvedDeviceCode();
    const first = await post(node(2), '/oauth/token', new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: 'cli' }));
    expect(first.status).toBe(200);
    const refreshToken = String(first.body.refresh_token);
    const outcomes = await race((base) => post(base, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'cli' })));
    expectOneSuccess('refresh_token_public', outcomes, /^400 invalid_grant$/);
  });

  it('rotates one personal token once: one new value, the old one revoked', async () => {
    const login = await post(node(0), '/users/alice/login', JSON.stringify({ password }), { 'content-type': 'application/json' });
    expect(login.status).toBe(200);
    const session = String(login.body.session);
    const api = { 'content-type': 'application/json', 'x-session': session };
    const created = await post(node(1), '/api/v1/tokens', JSON.stringify({ name: 'raced', scopes: ['read'] }), api);
    expect(created.status).toBe(201);
    const outcomes = await race((base) => post(base, `/api/v1/tokens/${String(created.body.id)}/rotate`, '', { 'x-session': session }));
    const rotated = expectOneSuccess('personal_token_rotation', outcomes, /^404 /);
    expect(await introspect(String(created.body.token))).toEqual({ active: false });
    expect(await introspect(String(rotated.token))).toMatchObject({ active: true, credential_kind: 'personal_access_token' });
    const listed = await fetch(new URL('/api/v1/tokens', node(2)), { headers: { 'x-session': session } });
    const tokens = ((await listed.json()) as { tokens?: { name: string; revoked: boolean }[] }).tokens ?? [];
    expect(tokens.filter((t) => t.name === 'raced').map((t) => t.revoked).sort()).toEqual([false, true]);
  });
});
