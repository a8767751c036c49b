/**
 * What the measurements of Tessera need, made as an operator and as clients would: clients, users
 * and a personal token through the core (like `tessera client create`, `tessera user create`), and
 * over HTTP an opaque and a JWT access token (client credentials), a session (password login), and
 * refresh tokens (device logins approved through the pages).
 */
import { randomBytes } from 'node:crypto';
import { HttpBrowser } from '../../test/support/http-browser.ts';
import { basicAuth } from '../load/http-client.ts';
import { DEVICE_POLL_INTERVAL_SECONDS, JWT_RESOURCE, type TesseraUnderTest } from './tessera.ts';

const by = { actor: 'bench' };

export interface Secret {
  id: string;
  secret: string;
  /** The HTTP Basic header for it. */
  authorization: string;
}

export interface TesseraFixtures {
  resourceServer: Secret;
  service: Secret;
  serviceJwt: Secret;
  /** A service client of its own for the memory figures (its token index starts empty). */
  memoryService: Secret;
  deviceClientId: string;
  user: { username: string; password: string };
  /** Users for the login storm. */
  stormUsers: { username: string; password: string }[];
  tokens: { opaque: string; jwt: string; personal: string; session: string; unknown: string };
}

async function secretClient(t: TesseraUnderTest, clientId: string, kind: 'service' | 'resource_server', extra: { defaultResource?: string } = {}): Promise<Secret> {
  const { secret } = await t.core.clients.create({ clientId, name: clientId, kind, scopes: ['read'], ...extra }, by);
  return { id: clientId, secret: secret!, authorization: basicAuth(clientId, secret!) };
}

async function postForm(url: string, body: Record<string, string>, headers: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST ${new URL(url).pathname} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

export async function clientCredentialsToken(base: string, client: Secret): Promise<string> {
  const answer = await postForm(`${base}/oauth/token`, { grant_type: 'client_credentials', scope: 'read' }, { authorization: client.authorization });
  return String(answer.access_token);
}

export async function prepareTessera(t: TesseraUnderTest, stormUsers: number): Promise<TesseraFixtures> {
  const resourceServer = await secretClient(t, 'bench-rs', 'resource_server');
  const service = await secretClient(t, 'bench-service', 'service');
  const serviceJwt = await secretClient(t, 'bench-service-jwt', 'service', { defaultResource: JWT_RESOURCE });
  const memoryService = await secretClient(t, 'bench-memory', 'service');
  const deviceClientId = 'bench-cli';
  await t.core.clients.create({ clientId: deviceClientId, name: 'Bench CLI', kind: 'device', scopes: ['read', 'offline_access'] }, by);

  const password = `bench-${randomBytes(12).toString('base64url')}`;
  const users = [{ username: 'bench-user', password }, ...Array.from({ length: stormUsers }, (_, i) => ({ username: `bench-storm-${i}`, password }))];
  for (const u of users) await t.core.accounts.createUser({ username: u.username, email: `${u.username}@bench.invalid`, password: u.password, scopes: ['read', 'deposit:write'] }, by);
  const user = (await t.core.accounts.findUser('bench-user'))!;
  const personal = (await t.core.personalTokens.create(user, { name: 'bench', scopes: ['read'], expiresInDays: 30 }, by)).token;

  const login = await postForm(`${t.url}/users/bench-user/login`, { password });
  const opaque = await clientCredentialsToken(t.url, service);
  const jwt = await clientCredentialsToken(t.url, serviceJwt);
  if (jwt.split('.').length !== 3) throw new Error('the JWT resource did not give a JWT access token');
  return {
    resourceServer,
    service,
    serviceJwt,
    memoryService,
    deviceClientId,
    user: users[0]!,
    stormUsers: users.slice(1),
    tokens: { opaque, jwt, personal, session: String(login.session), unknown: randomBytes(32).toString('base64url') },
  };
}

/** Approves a device code through the pages, as a person in a browser would. */
async function approveDevice(base: string, userCode: string, username: string, password: string): Promise<void> {
  const browser = new HttpBrowser(base);
  const input = await browser.request('/device');
  if (!/Enter the code shown/.test(input.html)) throw new Error(`unexpected /device page (${input.status})`);
  const confirm = await browser.submit(input, { user_code: userCode.toLowerCase().replace('-', '') });
  if (!/Confirm the device/.test(confirm.html)) throw new Error(`the user code was not accepted (${confirm.status})`);
  const consent = await browser.submit(confirm, { confirm: 'yes' });
  if (!/\/interaction\//.test(consent.url)) throw new Error(`no consent page after confirming (${consent.status})`);
  const done = await browser.submit(consent, { username, password, decision: 'approve' });
  if (!/Device connected/.test(done.html)) throw new Error(`the approval did not complete (${done.status})`);
}

/** Refresh tokens from `count` device logins: code, approval through the pages, one poll each. */
export async function mintRefreshTokens(t: TesseraUnderTest, f: TesseraFixtures, count: number): Promise<string[]> {
  const codes = await Promise.all(
    Array.from({ length: count }, () => postForm(`${t.url}/oauth/device/code`, { client_id: f.deviceClientId, scope: 'read offline_access' })),
  );
  // A few at a time: each approval signs in with the password (one argon2 verification).
  for (let i = 0; i < codes.length; i += 4) {
    await Promise.all(codes.slice(i, i + 4).map((code) => approveDevice(t.url, String(code.user_code), f.user.username, f.user.password)));
  }
  await new Promise((resolve) => setTimeout(resolve, DEVICE_POLL_INTERVAL_SECONDS * 1000 + 100));
  const tokens = await Promise.all(
    codes.map(async (code) => {
      const answer = await postForm(`${t.url}/oauth/token`, { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: f.deviceClientId, device_code: String(code.device_code) });
      if (typeof answer.refresh_token !== 'string') throw new Error('a device login gave no refresh token');
      return answer.refresh_token;
    }),
  );
  return tokens;
}
