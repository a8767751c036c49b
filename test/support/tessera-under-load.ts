import * as oidc from 'openid-client';
import { approveDevice } from './device-approval.ts';
import { freePort } from './private-redis.ts';
import type { Answer, Probe } from './steady-load.ts';
import { startTestTessera, type TestTessera } from './start-tessera.ts';
import { basic, FORM } from './token-requests.ts';

// A Tessera for the resilience scenarios, its accounts, clients and credentials (some revoked
// before the outage), and the probes of a steady load across its endpoints: introspection of a
// personal token and of an OAuth access token, forward-auth with both, API password login, the
// token endpoint's client_credentials and refresh grants, and /readyz.

const by = { actor: 'resilience test' };
const PASSWORD = 'alice-password-1';

export interface LoadedTessera {
  tessera: TestTessera;
  probes: Probe[];
}

/** What an answer says `active` is (introspection). */
const active = (answer: Answer) => (answer.body as { active?: unknown } | null)?.active;

/**
 * Starts a Tessera with `env` (its stores), creates what the probes use, revokes the credentials
 * the probes check stay inactive, and returns the probes. `env` may override the settings below;
 * `overrides` are configuration values, as startTestTessera takes them.
 */
export async function startLoadedTessera(env: Record<string, string>, overrides: Record<string, unknown> = {}): Promise<LoadedTessera> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const tessera = await startTestTessera({
    PORT: String(port),
    ISSUER: issuer,
    TESSERA_DEVICE_POLL_INTERVAL: '1',
    // The load logs in far more often than a person: the per-address API limit is not under test.
    TESSERA_API_REQUESTS_PER_IP_PER_MINUTE: '1000000',
    ...env,
  }, overrides);
  try {
    const alice = await tessera.core.accounts.createUser({ username: 'alice', password: PASSWORD, scopes: ['read'] }, by);
    const harvester = (await tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
    const recordsApi = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server', scopes: ['read'] }, by)).secret!;
    await tessera.core.clients.create({ clientId: 'cli', name: 'CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);

    const pat = (await tessera.core.personalTokens.create(alice, { name: 'survey', scopes: ['read'] }, by)).token;
    const revokedPat = await tessera.core.personalTokens.create(alice, { name: 'revoked', scopes: ['read'] }, by);
    await tessera.core.personalTokens.revoke(alice.id, revokedPat.record.id, by);

    const clientCredentials = (signal?: AbortSignal) =>
      fetch(`${issuer}/oauth/token`, { method: 'POST', headers: { ...FORM, authorization: basic('harvester', harvester) }, body: 'grant_type=client_credentials&scope=read', ...(signal ? { signal } : {}) });
    const issueAccessToken = async () => String(((await (await clientCredentials()).json()) as { access_token: string }).access_token);
    const accessToken = await issueAccessToken();
    const revokedAccessToken = await issueAccessToken();
    const revoked = await fetch(`${issuer}/oauth/revoke`, { method: 'POST', headers: { ...FORM, authorization: basic('harvester', harvester) }, body: new URLSearchParams({ token: revokedAccessToken }) });
    if (revoked.status !== 200) throw new Error(`revoking the access token answered ${revoked.status}`);

    // Refresh chains, each a device login of its own: a client follows its rotation.
    const cli = await oidc.discovery(new URL(issuer), 'cli', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const logins = await Promise.all(
      Array.from({ length: REFRESH_CHAINS }, async () => {
        const start = await oidc.initiateDeviceAuthorization(cli, { scope: 'read offline_access' });
        await approveDevice(issuer, start.user_code, 'alice', PASSWORD);
        return (await oidc.pollDeviceAuthorizationGrant(cli, start)).refresh_token!;
      }),
    );

    const introspect = (token: string) => (signal: AbortSignal) =>
      fetch(`${issuer}/oauth/introspect`, { method: 'POST', headers: { ...FORM, authorization: basic('records-api', recordsApi) }, body: new URLSearchParams({ token }), signal });
    const verify = (token: string) => (signal: AbortSignal) => fetch(`${issuer}/auth/verify`, { headers: { authorization: `Bearer ${token}` }, signal });

    const probes: Probe[] = [
      { name: 'introspect personal token', send: introspect(pat), succeeded: (a) => a.status === 200 && active(a) === true },
      { name: 'introspect access token', send: introspect(accessToken), succeeded: (a) => a.status === 200 && active(a) === true },
      { name: 'introspect revoked personal token', send: introspect(revokedPat.token), succeeded: (a) => a.status === 200 && active(a) === false },
      { name: 'introspect revoked access token', send: introspect(revokedAccessToken), succeeded: (a) => a.status === 200 && active(a) === false },
      { name: 'forward-auth personal token', send: verify(pat), succeeded: (a) => a.status === 200 },
      { name: 'forward-auth access token', send: verify(accessToken), succeeded: (a) => a.status === 200 },
      { name: 'forward-auth revoked personal token', send: verify(revokedPat.token), succeeded: (a) => a.status === 401 },
      { name: 'forward-auth revoked access token', send: verify(revokedAccessToken), succeeded: (a) => a.status === 401 },
      {
        name: 'password login',
        send: (signal) => fetch(`${issuer}/users/alice/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: PASSWORD }), signal }),
        succeeded: (a) => a.status === 200 && typeof (a.body as { session?: unknown }).session === 'string',
      },
      { name: 'client_credentials', send: clientCredentials, succeeded: (a) => a.status === 200 && typeof (a.body as { access_token?: unknown }).access_token === 'string' },
      ...logins.map((first, index) => refreshChain(`${REFRESH_PROBE} (login ${index + 1})`, issuer, first)),
      { name: 'readyz', send: (signal) => fetch(`${issuer}/readyz`, { signal }), succeeded: (a) => a.status === 200 },
    ];
    return { tessera, probes };
  } catch (error) {
    await tessera.stop();
    throw error;
  }
}

/** A refresh chain: the token endpoint's refresh grant, one request at a time, following the rotation. */
function refreshChain(name: string, issuer: string, first: string): Probe {
  let refreshToken = first;
  let ended = false;
  return {
    name,
    exclusive: true,
    send: (signal) => fetch(`${issuer}/oauth/token`, { method: 'POST', headers: FORM, body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'cli', refresh_token: refreshToken }), signal }),
    succeeded: (a) => a.status === 200 && typeof (a.body as { refresh_token?: unknown }).refresh_token === 'string',
    // After a 503 a client tries the same token again; after invalid_grant its login is over.
    onAnswer: (a) => {
      const next = (a.body as { refresh_token?: unknown } | null)?.refresh_token;
      if (a.status === 200 && typeof next === 'string') refreshToken = next;
      if (a.status === 400) ended = true;
    },
    retired: () => ended,
  };
}

/** The refresh chains' names start with this. */
export const REFRESH_PROBE = 'refresh';
const REFRESH_CHAINS = 3;

/** The probes whose credential was revoked: none may ever be answered active (or 200 at forward-auth). */
export const REVOKED_PROBES = ['introspect revoked personal token', 'introspect revoked access token', 'forward-auth revoked personal token', 'forward-auth revoked access token'];
