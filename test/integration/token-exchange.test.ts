import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, createRemoteJWKSet, decodeJwt, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { approveDevice } from '../support/device-approval.ts';
import type { ServerProcess } from '../support/server-process.ts';
import type { TestTessera } from '../support/start-tessera.ts';
import { introspectAs } from '../support/token-requests.ts';
import { startTwoNodes, type TwoNodes } from '../support/two-nodes.ts';
import { documentedFetch } from '../support/documented-answers.ts';
import { runTessera } from '../support/cli-process.ts';
import { HttpBrowser } from '../support/http-browser.ts';
import { tokenFormat } from '../../src/credentials/token-format.ts';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const STORAGE = 'https://storage.example.org';
const COMPUTE = 'https://compute.example.org';
const JWT_API = 'https://records.example.org';
/** A grid storage element accepting WLCG tokens (docs/wlcg-tokens.md). */
const STORAGE_ELEMENT = 'https://se.example.org';
const BATCH_SECRET = 'batch-jobs-secret-0123456789abcdefghijklmnop';
const by = { actor: 'test' };
const GUESSES = 20;

// RFC 8693 token exchange (docs/token-exchange.md) against two real Tessera processes sharing
// PostgreSQL and Redis: node A in this process, node B a child process. Every exchange goes
// through openid-client's genericGrantRequest; the exchanged JWTs are checked with jose against
// the published JWKS and introspected on both nodes, before and after their subject ends.
describe('token exchange (RFC 8693)', () => {
  let nodes: TwoNodes;
  let a: TestTessera;
  let b: ServerProcess;
  let issuer: URL;
  let rsSecret: string;
  let pipelineSecret: string;
  let plainSecret: string;
  let batch: oidc.Configuration;
  let pipeline: oidc.Configuration;
  let device: oidc.Configuration;
  let aliceId: string;

  beforeAll(async () => {
    nodes = await startTwoNodes({
      config: {
        oauth: {
          resources: { 'urn:tessera:api': { format: 'opaque' }, [JWT_API]: { format: 'jwt' }, [STORAGE]: { format: 'jwt' }, [COMPUTE]: { format: 'opaque' }, [STORAGE_ELEMENT]: { format: 'jwt', profile: 'wlcg' } },
        },
        scopes: {
          read: 'Read records.',
          'deposit:write': 'Create depositions.',
          'deposit:actions': 'Publish depositions.',
          'storage.read': { description: 'Read files on grid storage.', paths: true },
        },
        // The batch system's client, declared in the configuration with its policy.
        clients: [
          {
            clientId: 'batch-jobs',
            name: 'Batch jobs',
            kind: 'service',
            secretSha256: createHash('sha256').update(BATCH_SECRET).digest('hex'),
            scopes: ['read'],
            tokenExchange: { subjectTokenKinds: ['personal_access_token', 'access_token', 'session'], audiences: [STORAGE], scopes: ['read', 'deposit:write'] },
          },
          // A grid workflow's client: exchanges personal tokens for storage-element tokens under /atlas.
          {
            clientId: 'grid-jobs',
            name: 'Grid jobs',
            kind: 'service',
            secretSha256: createHash('sha256').update(BATCH_SECRET).digest('hex'),
            scopes: ['read'],
            tokenExchange: { subjectTokenKinds: ['personal_access_token'], audiences: [STORAGE_ELEMENT], scopes: ['storage.read:/atlas'] },
          },
        ],
      },
      settings: {
        TESSERA_DEVICE_POLL_INTERVAL: '1',
        TESSERA_INTROSPECTION_CACHE_TTL: '60',
        // Personal-token guessing: a budget a test can use up (and the other tests do not).
        TESSERA_FAILED_LOOKUPS_PER_SOURCE: String(GUESSES),
        TESSERA_FAILED_LOOKUP_WINDOW: '3600',
      },
      a: { settings: { TESSERA_METRICS_PORT: '0' } },
    });
    ({ a, b, issuer } = nodes);

    aliceId = (await a.core.accounts.createUser({ username: 'alice', password: 'alice-password', scopes: ['read', 'deposit:write', 'deposit:actions'] }, by)).id;
    await a.core.accounts.createUser({ username: 'bob', password: 'bob-password-long', scopes: ['read'] }, by);
    rsSecret = (await a.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    // Registered at run time: exchanges what batch-jobs issued (access tokens) for the compute service.
    pipelineSecret = (
      await a.core.clients.create({ clientId: 'pipeline', name: 'Pipeline', kind: 'service', scopes: ['read'], tokenExchange: { subjectTokenKinds: ['access_token'], audiences: [COMPUTE, STORAGE], scopes: ['read'] } }, by)
    ).secret!;
    plainSecret = (await a.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
    await a.core.clients.create({ clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['read', 'deposit:write', 'deposit:actions', 'offline_access'] }, by);
    const insecure = { execute: [oidc.allowInsecureRequests] };
    batch = await oidc.discovery(issuer, 'batch-jobs', BATCH_SECRET, undefined, insecure);
    pipeline = await oidc.discovery(issuer, 'pipeline', pipelineSecret, undefined, insecure);
    device = await oidc.discovery(issuer, 'cli', undefined, oidc.None(), insecure);
  }, 60_000);

  afterAll(async () => {
    await nodes?.stop();
  });

  const exchange = (config: oidc.Configuration, parameters: Record<string, string>) => oidc.genericGrantRequest(config, EXCHANGE, { subject_token_type: ACCESS_TOKEN, ...parameters });

  const introspect = (base: string, token: string) => introspectAs({ url: base }, { id: 'records-api', secret: rsSecret }, token);

  /** Active on both nodes (and cached there), then ended by `end`, then inactive on both within generous bounds. */
  async function endsEverywhere(tokens: string[], end: () => Promise<void>) {
    for (const token of tokens) {
      for (const base of [a.url, b.url, b.url]) expect(await introspect(base, token)).toMatchObject({ active: true });
    }
    await end();
    for (const token of tokens) {
      expect(await introspect(a.url, token)).toEqual({ active: false });
      const deadline = Date.now() + 5_000;
      for (;;) {
        const answer = await introspect(b.url, token);
        if (!answer.active) break;
        if (Date.now() > deadline) throw new Error('node B still answers active 5 s after the subject ended');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  }

  async function personalToken(scopes: string[] = ['read', 'deposit:write', 'deposit:actions']) {
    const alice = (await a.core.accounts.findUser('alice'))!;
    return a.core.personalTokens.create(alice, { name: `job ${Math.random()}`, scopes }, by);
  }

  async function login(username: string, password: string): Promise<string> {
    const res = await fetch(`${a.url}/users/${username}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password }) });
    expect(res.status).toBe(200);
    return String(((await res.json()) as { session: string }).session);
  }

  async function deviceTokens(resource?: string, DPoP?: oidc.DPoPHandle) {
    const start = await oidc.initiateDeviceAuthorization(device, { scope: 'read deposit:write offline_access', ...(resource ? { resource } : {}) });
    await approveDevice(issuer.origin, start.user_code, 'alice', 'alice-password');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const tokens = await oidc.pollDeviceAuthorizationGrant(device, start, undefined, DPoP ? { DPoP } : undefined);
    return { access: tokens.access_token, refresh: tokens.refresh_token!, type: tokens.token_type.toLowerCase() };
  }

  async function revoke(token: string, client: { id: string; secret?: string }) {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (client.secret) headers.authorization = `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`;
    const res = await fetch(`${a.url}/oauth/revoke`, { method: 'POST', headers, body: new URLSearchParams({ token, ...(client.secret ? {} : { client_id: client.id }) }) });
    expect(res.status).toBe(200);
  }

  const refusal = (promise: Promise<unknown>) => promise.then(() => ({ error: 'none' }), (error: { error?: string; error_description?: string }) => ({ error: error.error, error_description: error.error_description }));

  it('is advertised in the discovery documents', () => {
    expect(batch.serverMetadata().grant_types_supported).toContain(EXCHANGE);
  });

  it('shows each policy in `tessera client show`', async () => {
    const env = { DATABASE_URL: nodes.db.url, TESSERA_CONFIG: nodes.configFile! };
    expect((await runTessera(['client', 'show', 'batch-jobs'], env)).stdout).toContain(`token_exchange:     personal_access_token access_token session → ${STORAGE} (scopes read deposit:write)`);
    expect((await runTessera(['client', 'show', 'pipeline'], env)).stdout).toContain(`token_exchange:     access_token → ${COMPUTE} ${STORAGE} (scopes read)`);
    expect((await runTessera(['client', 'show', 'harvester'], env)).stdout).toContain('token_exchange:     no');
  }, 30_000);

  it('exchanges a personal access token for a short-lived JWT for one audience, which verifies against the JWKS and ends with the token', async () => {
    const since = new Date();
    const pat = await personalToken();
    const answer = await exchange(batch, { subject_token: pat.token, audience: STORAGE, scope: 'read' });
    expect(answer).toMatchObject({ issued_token_type: ACCESS_TOKEN, token_type: 'bearer', scope: 'read' });
    expect(answer.refresh_token).toBeUndefined();
    expect(answer.expires_in).toBeGreaterThan(290);
    expect(answer.expires_in).toBeLessThanOrEqual(300);

    const jwks = createRemoteJWKSet(new URL(batch.serverMetadata().jwks_uri!));
    const { payload, protectedHeader } = await jwtVerify(answer.access_token, jwks, { issuer: issuer.href.replace(/\/$/, ''), audience: STORAGE, typ: 'at+jwt' });
    expect(protectedHeader.kid).toEqual(expect.any(String));
    expect(payload).toMatchObject({ sub: aliceId, client_id: 'batch-jobs', scope: 'read', act: { sub: 'batch-jobs', client_id: 'batch-jobs' }, jti: expect.any(String) });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(300);
    expect(payload.tessera_grant).toBeUndefined();

    expect(await introspect(b.url, answer.access_token)).toMatchObject({ active: true, sub: aliceId, username: 'alice', client_id: 'batch-jobs', aud: STORAGE, scope: 'read', act: { sub: 'batch-jobs', client_id: 'batch-jobs' } });
    await endsEverywhere([answer.access_token], async () => {
      await a.core.personalTokens.revoke(aliceId, pat.record.id, by);
    });

    const metrics = await (await fetch(`${a.metricsUrl!}/metrics`)).text();
    expect(Number(/^tessera_oauth_tokens_issued_total\{kind="exchanged_access_token"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);

    await a.core.audit.settled();
    const [event] = (await a.core.auditQuery.page({ action: 'token.exchanged', since })).events;
    expect(event).toMatchObject({ actor: 'client:batch-jobs', subject: `user:${aliceId}`, details: { clientId: 'batch-jobs', userId: aliceId, subjectKind: 'personal_access_token', audience: STORAGE, scopes: ['read'] } });
    expect(JSON.stringify(event)).not.toContain(pat.token);
  }, 30_000);

  it('exchanges an API session, and the exchanged token ends at its logout', async () => {
    const session = await login('alice', 'alice-password');
    const answer = await exchange(batch, { subject_token: session, resource: STORAGE });
    expect(decodeJwt(answer.access_token)).toMatchObject({ sub: aliceId, aud: STORAGE });
    await endsEverywhere([answer.access_token], async () => {
      expect((await fetch(`${a.url}/logout`, { method: 'POST', headers: { 'x-session': session } })).status).toBeLessThan(300);
    });
  });

  it('exchanges an opaque OAuth access token, ended by its revocation, and a JWT one, ended with its login', async () => {
    const opaque = await deviceTokens();
    const fromOpaque = await exchange(batch, { subject_token: opaque.access, audience: STORAGE, scope: 'deposit:write' });
    expect(decodeJwt(fromOpaque.access_token)).toMatchObject({ sub: aliceId, scope: 'deposit:write' });
    await endsEverywhere([fromOpaque.access_token], () => revoke(opaque.access, { id: 'cli' }));

    const jwt = await deviceTokens(JWT_API);
    const fromJwt = await exchange(batch, { subject_token: jwt.access });
    expect(decodeJwt(fromJwt.access_token)).toMatchObject({ sub: aliceId, aud: STORAGE, scope: 'read deposit:write' });
    await endsEverywhere([fromJwt.access_token], () => revoke(jwt.refresh, { id: 'cli' }));
  }, 40_000);

  it('narrows: with no scope, what the credential, the policy and the person share; never wider', async () => {
    const pat = await personalToken(['read', 'deposit:write', 'deposit:actions']);
    // deposit:actions is the person's and the token's, but not in batch-jobs's policy.
    expect((await exchange(batch, { subject_token: pat.token })).scope).toBe('read deposit:write');
    expect(await refusal(exchange(batch, { subject_token: pat.token, scope: 'read deposit:actions' }))).toEqual({ error: 'invalid_scope', error_description: 'this client may not exchange for the scope deposit:actions' });
    const readOnly = await personalToken(['read']);
    expect(await refusal(exchange(batch, { subject_token: readOnly.token, scope: 'deposit:write' }))).toEqual({
      error: 'invalid_scope',
      error_description: 'the subject credential does not hold the scope deposit:write: an exchange only narrows',
    });
    // The person loses a scope after the token was made: the exchange gives no more than they have now.
    const both = await personalToken(['read', 'deposit:write']);
    await a.core.accounts.setAllowedScopes('alice', ['read', 'deposit:actions'], by);
    try {
      expect((await exchange(batch, { subject_token: both.token })).scope).toBe('read');
    } finally {
      await a.core.accounts.setAllowedScopes('alice', ['read', 'deposit:write', 'deposit:actions'], by);
    }
  });

  it('refuses unlisted and unknown audiences, two targets, a client without a policy and a kind outside it', async () => {
    const since = new Date();
    const pat = await personalToken();
    expect(await refusal(exchange(batch, { subject_token: pat.token, audience: COMPUTE }))).toEqual({ error: 'invalid_target', error_description: `this client may not exchange tokens for the audience ${COMPUTE}` });
    expect(await refusal(exchange(batch, { subject_token: pat.token, audience: 'https://elsewhere.example.org' }))).toEqual({ error: 'invalid_target', error_description: 'unknown audience https://elsewhere.example.org' });
    expect(await refusal(exchange(batch, { subject_token: pat.token, audience: STORAGE, resource: COMPUTE }))).toMatchObject({ error: 'invalid_target' });
    // pipeline may exchange for two audiences: it must say which.
    const first = await exchange(batch, { subject_token: pat.token });
    expect(await refusal(exchange(pipeline, { subject_token: first.access_token }))).toEqual({ error: 'invalid_target', error_description: 'name the audience (audience or resource): this client may exchange for several' });

    const harvester = await oidc.discovery(issuer, 'harvester', plainSecret, undefined, { execute: [oidc.allowInsecureRequests] });
    expect(await refusal(exchange(harvester, { subject_token: pat.token, audience: STORAGE }))).toMatchObject({ error: 'unauthorized_client' });
    expect(await refusal(exchange(pipeline, { subject_token: pat.token, audience: COMPUTE }))).toEqual({ error: 'unauthorized_client', error_description: 'this client may not exchange personal access tokens' });
    expect(await refusal(exchange(batch, { subject_token: pat.token, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }))).toMatchObject({ error: 'invalid_request' });
    expect(await refusal(oidc.genericGrantRequest(batch, EXCHANGE, { subject_token: pat.token }))).toMatchObject({ error: 'invalid_request' });
    expect(await refusal(exchange(batch, { subject_token: pat.token, actor_token: pat.token }))).toEqual({ error: 'invalid_request', error_description: 'actor_token and actor_token_type go together' });

    await a.core.audit.settled();
    const refused = (await a.core.auditQuery.page({ action: 'token.exchange_refused', since })).events;
    expect(refused.map((event) => event.details.error)).toEqual(expect.arrayContaining(['invalid_target', 'unauthorized_client', 'invalid_request']));
    expect(refused.find((event) => event.actor === 'client:harvester')).toMatchObject({ details: { clientId: 'harvester', error: 'unauthorized_client' } });
    expect(JSON.stringify(refused)).not.toContain(pat.token);
  });

  it('refuses a revoked or expired subject, and never outlives one about to expire', async () => {
    const revoked = await personalToken();
    await a.core.personalTokens.revoke(aliceId, revoked.record.id, by);
    expect(await refusal(exchange(batch, { subject_token: revoked.token }))).toEqual({ error: 'invalid_grant', error_description: 'subject_token is invalid, expired or revoked' });

    const expired = await personalToken();
    await a.core.database.query("UPDATE personal_tokens SET created_at = now() - interval '2 days', expires_at = now() - interval '1 second' WHERE id = $1", [expired.record.id]);
    expect(await refusal(exchange(batch, { subject_token: expired.token }))).toEqual({ error: 'invalid_grant', error_description: 'subject_token is invalid, expired or revoked' });

    const ending = await personalToken();
    await a.core.database.query("UPDATE personal_tokens SET expires_at = now() + interval '100 seconds' WHERE id = $1", [ending.record.id]);
    const answer = await exchange(batch, { subject_token: ending.token });
    expect(answer.expires_in).toBeLessThanOrEqual(100);
    const { exp } = decodeJwt(answer.access_token);
    expect(exp! * 1000).toBeLessThanOrEqual(Date.now() + 100_000);

    const serviceToken = (await oidc.clientCredentialsGrant(pipeline, { scope: 'read', resource: JWT_API })).access_token;
    expect(await refusal(exchange(pipeline, { subject_token: serviceToken, audience: COMPUTE }))).toEqual({ error: 'invalid_grant', error_description: "subject_token is a client's own token: only a person's credentials are exchanged" });
  });

  it('limits a client that keeps presenting unknown personal tokens (429), and stops a delegation chain at four earlier actors', async () => {
    const secret = (await a.core.clients.create({ clientId: 'guesser', name: 'Guesser', kind: 'service', scopes: ['read'], tokenExchange: { subjectTokenKinds: ['personal_access_token'], audiences: [STORAGE], scopes: ['read'] } }, by)).secret!;
    const guesser = await oidc.discovery(issuer, 'guesser', secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const pat = await personalToken(['read']);
    // Well-formed (a right checksum): each costs a lookup in the database, so each counts.
    const guess = () => tokenFormat.generate('personal_access_token');
    for (let i = 0; i < GUESSES; i += 1) expect((await refusal(exchange(guesser, { subject_token: guess() }))).error).toBe('invalid_grant');
    const limited = (await exchange(guesser, { subject_token: pat.token }).catch((error: unknown) => error)) as oidc.ResponseBodyError;
    expect(limited).toMatchObject({ status: 429, error: 'rate_limited', error_description: 'too many personal-token lookups found nothing; try again later' });
    expect(Number(limited.response.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another client is not limited by it.
    expect((await exchange(batch, { subject_token: pat.token })).scope).toBe('read');

    let token = (await exchange(batch, { subject_token: pat.token })).access_token;
    for (let depth = 1; depth < 4; depth += 1) token = (await exchange(pipeline, { subject_token: token, audience: COMPUTE })).access_token;
    expect(decodeJwt(token)).toMatchObject({ act: { act: { act: { act: { sub: 'batch-jobs' } } } } });
    expect(await refusal(exchange(pipeline, { subject_token: token, audience: COMPUTE }))).toEqual({ error: 'invalid_grant', error_description: 'subject_token was already exchanged 4 times: the delegation chain is too long' });
  });

  it('authenticates an exchanging client as for any grant: with private_key_jwt too, and never without its credentials', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'signer-1', alg: 'ES256', use: 'sig' }] };
    await a.core.clients.create({ clientId: 'signer', name: 'Signer', kind: 'service', scopes: ['read'], jwks, tokenExchange: { subjectTokenKinds: ['personal_access_token'], audiences: [STORAGE], scopes: ['read'] } }, by);
    const signer = await oidc.discovery(issuer, 'signer', undefined, oidc.PrivateKeyJwt({ key: privateKey, kid: 'signer-1' }), { execute: [oidc.allowInsecureRequests] });
    const pat = await personalToken(['read']);
    expect(decodeJwt((await exchange(signer, { subject_token: pat.token })).access_token)).toMatchObject({ client_id: 'signer', act: { sub: 'signer' } });
    const anonymous = await oidc.discovery(issuer, 'batch-jobs', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    expect(await refusal(exchange(anonymous, { subject_token: pat.token }))).toMatchObject({ error: 'invalid_client' });
  });

  it('records each actor: nested act when an exchanged token is exchanged again, the actor token\'s subject when one is sent; all end with the first subject', async () => {
    const pat = await personalToken();
    const first = await exchange(batch, { subject_token: pat.token, scope: 'read' });
    const second = await exchange(pipeline, { subject_token: first.access_token, audience: COMPUTE });
    expect(decodeJwt(second.access_token)).toMatchObject({ sub: aliceId, aud: COMPUTE, client_id: 'pipeline', scope: 'read', act: { sub: 'pipeline', client_id: 'pipeline', act: { sub: 'batch-jobs', client_id: 'batch-jobs' } } });
    expect(await introspect(b.url, second.access_token)).toMatchObject({ active: true, act: { sub: 'pipeline', act: { sub: 'batch-jobs' } } });

    const bobSession = await login('bob', 'bob-password-long');
    const bob = (await a.core.accounts.findUser('bob'))!;
    const acted = await exchange(pipeline, { subject_token: first.access_token, audience: STORAGE, actor_token: bobSession, actor_token_type: ACCESS_TOKEN });
    expect(decodeJwt(acted.access_token)).toMatchObject({ sub: aliceId, act: { sub: bob.id, client_id: 'pipeline', act: { sub: 'batch-jobs' } } });

    await endsEverywhere([first.access_token, second.access_token, acted.access_token], async () => {
      await a.core.personalTokens.revoke(aliceId, pat.record.id, by);
    });
  });

  it("ends with the person's account (disabled) and with the exchanging client (deleted), on every node", async () => {
    const bob = (await a.core.accounts.findUser('bob'))!;
    const pat = await a.core.personalTokens.create(bob, { name: 'job', scopes: ['read'] }, by);
    const exchanged = await exchange(batch, { subject_token: pat.token });
    expect(decodeJwt(exchanged.access_token)).toMatchObject({ sub: bob.id, scope: 'read' });
    await endsEverywhere([exchanged.access_token], async () => {
      await a.core.accounts.setDisabled('bob', true, by);
    });
    await a.core.accounts.setDisabled('bob', false, by);

    const secret = (await a.core.clients.create({ clientId: 'short-lived', name: 'Short-lived', kind: 'service', scopes: ['read'], tokenExchange: { subjectTokenKinds: ['personal_access_token'], audiences: [STORAGE], scopes: ['read'] } }, by)).secret!;
    const shortLived = await oidc.discovery(issuer, 'short-lived', secret, undefined, { execute: [oidc.allowInsecureRequests] });
    const fromDeleted = await exchange(shortLived, { subject_token: pat.token });
    await endsEverywhere([fromDeleted.access_token], async () => {
      await a.core.clients.delete('short-lived', by);
    });
  });

  describe('policies of registered clients, through the admin API', () => {
    // Every answer of node A here is held to /openapi.json (test/support/documented-answers.ts).
    const documented = documentedFetch(() => a.url);
    let adminSession: string;
    const admin = async (path: string, init: { method?: string; body?: unknown } = {}) => {
      const res = await documented(`${a.url}/api/v1/admin/clients${path}`, {
        method: init.method ?? 'GET',
        headers: { 'x-session': adminSession, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    beforeAll(async () => {
      adminSession = await login('admin', 'initial-admin-password');
    });

    it('registers a client with a policy, sets one on a client without, removes it, and refuses what does not fit', async () => {
      const created = await admin('', { method: 'POST', body: { client_id: 'archiver', name: 'Archiver', kind: 'service', scopes: ['read'], token_exchange: { subject_token_kinds: ['session'], audiences: [STORAGE], scopes: ['read'] } } });
      expect(created.status).toBe(201);
      expect(created.body.token_exchange).toEqual({ subject_token_kinds: ['session'], audiences: [STORAGE], scopes: ['read'] });
      const archiver = await oidc.discovery(issuer, 'archiver', String(created.body.client_secret), undefined, { execute: [oidc.allowInsecureRequests] });
      expect(decodeJwt((await exchange(archiver, { subject_token: await login('alice', 'alice-password') })).access_token)).toMatchObject({ client_id: 'archiver', aud: STORAGE, scope: 'read' });

      const pat = await personalToken();
      const harvester = await oidc.discovery(issuer, 'harvester', plainSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      expect(await refusal(exchange(harvester, { subject_token: pat.token }))).toMatchObject({ error: 'unauthorized_client' });
      const set = await admin('/harvester/token-exchange', { method: 'PUT', body: { subject_token_kinds: ['personal_access_token'], audiences: [STORAGE], scopes: ['read'] } });
      expect(set.status).toBe(200);
      expect(set.body).toMatchObject({ client_id: 'harvester', token_exchange: { subject_token_kinds: ['personal_access_token'], audiences: [STORAGE], scopes: ['read'] } });
      // At once, on both nodes (the change drops every node's cached client).
      expect((await exchange(harvester, { subject_token: pat.token })).scope).toBe('read');
      const onB = await oidc.discovery(issuer, 'harvester', plainSecret, undefined, { execute: [oidc.allowInsecureRequests] });
      // Node B shares the issuer; its requests go to B's own port.
      const viaB = new URL(b.url).origin;
      onB[oidc.customFetch] = (url, options) => fetch(url.replace(issuer.origin, viaB), options as RequestInit);
      expect(await exchange(onB, { subject_token: pat.token })).toMatchObject({ issued_token_type: ACCESS_TOKEN, scope: 'read' });

      // The admin console shows it on the client's page.
      const browser = new HttpBrowser(a.url);
      await browser.submit(await browser.request('/login'), { username: 'admin', password: 'initial-admin-password' });
      const page = await browser.request('/admin/clients/harvester');
      expect(page.status).toBe(200);
      expect(page.html).toContain(`<dt>Token exchange</dt><dd>exchanges <code>personal_access_token</code> for <code class="wrap">${STORAGE}</code> with at most <code>read</code> </dd>`);

      const removed = await admin('/harvester/token-exchange', { method: 'DELETE' });
      expect((await browser.request('/admin/clients/harvester')).html).toContain('<dt>Token exchange</dt><dd><span class="muted">may not exchange</span></dd>');

      // …and sets or withdraws it with a form.
      const csrf = /name="csrf" value="([^"]+)"/.exec((await browser.request('/admin/clients/archiver')).html)![1]!;
      const saved = await browser.request('/admin/clients/archiver/token-exchange', { form: { csrf, subject_token_kinds: 'personal_access_token', audiences: `${STORAGE}`, scopes: 'read deposit:write' } });
      expect(saved.html).toContain('Saved the token-exchange policy of archiver.');
      expect((await a.core.clients.find('archiver'))!.tokenExchange).toEqual({ subjectTokenKinds: ['personal_access_token'], audiences: [STORAGE], scopes: ['read', 'deposit:write'] });
      const refusedPage = await browser.request('/admin/clients/archiver/token-exchange', { form: { csrf, subject_token_kinds: 'session', audiences: 'https://nowhere.example.org', scopes: 'read' } });
      expect(refusedPage.status).toBe(400);
      expect(refusedPage.html).toContain('&quot;https://nowhere.example.org&quot; is not one of oauth.resources');
      expect((await a.core.clients.find('archiver'))!.tokenExchange!.subjectTokenKinds).toEqual(['personal_access_token']);
      const withdrawn = await browser.request('/admin/clients/archiver/token-exchange', { form: { csrf, remove: 'yes' } });
      expect(withdrawn.html).toContain('archiver may no longer exchange tokens.');
      expect((await a.core.clients.find('archiver'))!.tokenExchange).toBeNull();
      expect(removed.body.token_exchange).toBeNull();
      expect(await refusal(exchange(harvester, { subject_token: pat.token }))).toMatchObject({ error: 'unauthorized_client' });

      const wrong = await admin('/harvester/token-exchange', { method: 'PUT', body: { subject_token_kinds: ['session'], audiences: ['https://elsewhere.example.org'], scopes: ['deposit:nope'] } });
      expect(wrong.status).toBe(400);
      expect((wrong.body.errors as { field: string }[]).map((e) => e.field).sort()).toEqual(['audiences.0', 'scopes.0']);
      const kind = await admin('/harvester/token-exchange', { method: 'PUT', body: { subject_token_kinds: ['refresh_token'], audiences: [STORAGE], scopes: ['read'] } });
      expect((kind.body.errors as { field: string }[]).map((e) => e.field)).toEqual(['subject_token_kinds.0']);
      const device = await admin('', { method: 'POST', body: { name: 'Tool', kind: 'device', token_exchange: { subject_token_kinds: ['session'], audiences: [STORAGE], scopes: ['read'] } } });
      expect(device.status).toBe(400);
      expect((device.body.errors as { field: string }[]).map((e) => e.field)).toEqual(['token_exchange']);
      expect((await admin('/batch-jobs/token-exchange', { method: 'DELETE' })).status).toBe(409);
      expect((await admin('/nobody/token-exchange', { method: 'DELETE' })).status).toBe(404);
      expect((await admin('/cli/token-exchange', { method: 'PUT', body: { subject_token_kinds: ['session'], audiences: [STORAGE], scopes: ['read'] } })).status).toBe(409);
      expect([...documented.checked]).toEqual(
        expect.arrayContaining([
          'POST /api/v1/admin/clients 201', 'POST /api/v1/admin/clients 400',
          'PUT /api/v1/admin/clients/{id}/token-exchange 200', 'PUT /api/v1/admin/clients/{id}/token-exchange 400', 'PUT /api/v1/admin/clients/{id}/token-exchange 409',
          'DELETE /api/v1/admin/clients/{id}/token-exchange 200', 'DELETE /api/v1/admin/clients/{id}/token-exchange 404', 'DELETE /api/v1/admin/clients/{id}/token-exchange 409',
        ]),
      );
    });
  });

  it('ends an exchanged token revoked by its client (RFC 7009), and what was exchanged for it, while its subject stays active', async () => {
    const pat = await personalToken();
    const first = await exchange(batch, { subject_token: pat.token });
    const second = await exchange(pipeline, { subject_token: first.access_token, audience: COMPUTE });
    await endsEverywhere([first.access_token, second.access_token], () => revoke(first.access_token, { id: 'batch-jobs', secret: BATCH_SECRET }));
    expect(await introspect(a.url, pat.token)).toMatchObject({ active: true });
  });

  it('narrows path scopes by containment (/atlas covers /atlas/data, never /atlasx) and shapes the token for a WLCG audience', async () => {
    await a.core.accounts.setAllowedScopes('alice', ['read', 'deposit:write', 'deposit:actions', 'storage.read:/atlas'], by);
    try {
      const pat = await personalToken(['read', 'storage.read:/atlas']);
      const grid = await oidc.discovery(issuer, 'grid-jobs', BATCH_SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
      const answer = await exchange(grid, { subject_token: pat.token, scope: 'storage.read:/atlas/data' });
      expect(answer.scope).toBe('storage.read:/atlas/data');
      const jwks = createRemoteJWKSet(new URL(batch.serverMetadata().jwks_uri!));
      const { payload } = await jwtVerify(answer.access_token, jwks, { issuer: issuer.href.replace(/\/$/, ''), audience: STORAGE_ELEMENT });
      // The WLCG Common JWT Profile's claims, the delegation kept.
      expect(payload).toMatchObject({ 'wlcg.ver': '1.0', sub: aliceId, scope: 'storage.read:/atlas/data', act: { sub: 'grid-jobs', client_id: 'grid-jobs' } });
      expect(payload.nbf).toBe(payload.iat);
      expect(typeof payload.jti).toBe('string');
      expect(await refusal(exchange(grid, { subject_token: pat.token, scope: 'storage.read:/atlasx' }))).toEqual({
        error: 'invalid_scope',
        error_description: 'the subject credential does not hold the scope storage.read:/atlasx: an exchange only narrows',
      });
      expect(await introspect(b.url, answer.access_token)).toMatchObject({ active: true, scope: 'storage.read:/atlas/data', act: { sub: 'grid-jobs' } });
    } finally {
      await a.core.accounts.setAllowedScopes('alice', ['read', 'deposit:write', 'deposit:actions'], by);
    }
  });

  it('binds the new token to the key of a DPoP proof sent with the exchange, and spends each proof once', async () => {
    const pat = await personalToken();
    const keys = await oidc.randomDPoPKeyPair('ES256');
    const answer = await oidc.genericGrantRequest(batch, EXCHANGE, { subject_token_type: ACCESS_TOKEN, subject_token: pat.token, audience: STORAGE, scope: 'read' }, { DPoP: oidc.getDPoPHandle(batch, keys) });
    expect(answer).toMatchObject({ issued_token_type: ACCESS_TOKEN, token_type: 'dpop', scope: 'read' });
    const jkt = await calculateJwkThumbprint(await exportJWK(keys.publicKey));
    const { payload } = await jwtVerify(answer.access_token, createRemoteJWKSet(new URL(batch.serverMetadata().jwks_uri!)), { audience: STORAGE, typ: 'at+jwt' });
    expect(payload).toMatchObject({ cnf: { jkt }, act: { sub: 'batch-jobs' } });
    expect(await introspect(b.url, answer.access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt } });

    // The same proof twice: the second exchange is refused, the first's token stands.
    const tokenEndpoint = batch.serverMetadata().token_endpoint!;
    const jwk = await exportJWK(keys.publicKey);
    const proof = await new SignJWT({ htm: 'POST', htu: tokenEndpoint, jti: randomUUID() }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).setIssuedAt().sign(keys.privateKey);
    const send = () =>
      fetch(tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`batch-jobs:${BATCH_SECRET}`).toString('base64')}`, dpop: proof },
        body: new URLSearchParams({ grant_type: EXCHANGE, subject_token_type: ACCESS_TOKEN, subject_token: pat.token, audience: STORAGE }),
      }).then(async (res) => [res.status, (await res.json()) as Record<string, unknown>] as const);
    const [firstStatus, first] = await send();
    expect([firstStatus, first.token_type]).toEqual([200, 'DPoP']);
    const [againStatus, again] = await send();
    expect([againStatus, again.error]).toEqual([400, 'invalid_grant']);
    expect(await introspect(a.url, String(first.access_token))).toMatchObject({ active: true, cnf: { jkt } });
  });

  it('refuses a DPoP-bound subject token by name: only the holder of its key may use it', async () => {
    const bound = await deviceTokens(undefined, oidc.getDPoPHandle(device, await oidc.randomDPoPKeyPair('ES256')));
    expect(bound.type).toBe('dpop');
    expect(await refusal(exchange(batch, { subject_token: bound.access }))).toEqual({
      error: 'invalid_grant',
      error_description: 'subject_token is bound to a DPoP key: only its holder may use it; exchange a personal access token or an unbound token',
    });
  });
});
