/**
 * Reference server (b): what a Node team would build instead of Tessera. Stock oidc-provider 9
 * (from node_modules, unmodified) with a plain Redis adapter written the obvious way, after the
 * example adapter oidc-provider used to ship: each artefact as JSON under `oidc:<Model>:<id>` with
 * EX, a set per grant listing its artefacts, `consumed` written into the payload. Introspection,
 * revocation, client credentials, refresh and the device flow are enabled; API tokens are issued
 * for one resource (`urn:tessera:api`, opaque), as Tessera's are.
 *
 * Clients: `bench-rs` (a resource server, client_secret_basic), `bench-service` (client
 * credentials, client_secret_basic) and `bench-cli` (public: device code and refresh token).
 *
 * Bench only: `POST /bench/mint-refresh?count=N` creates N grants, each with a refresh token,
 * through the provider's own models (as a completed device login would), and answers their values.
 *
 * Run as its own process: `node bench/servers/stock-oidc-provider.ts` with REDIS_URL,
 * BENCH_REDIS_PREFIX, PORT and BENCH_SECRET (the clients' secret). Prints one JSON line
 * `{"listening":"http://127.0.0.1:…"}` on stdout.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Adapter, type AdapterPayload, type Configuration } from 'oidc-provider';

const prefix = process.env.BENCH_REDIS_PREFIX ?? 'bench:stock:';
const secret = process.env.BENCH_SECRET ?? 'bench-secret-bench-secret-bench-secret';
const port = Number(process.env.PORT ?? 0);
const RESOURCE = 'urn:tessera:api';
const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { keyPrefix: prefix });

const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

/** The plain Redis adapter. */
class RedisAdapter implements Adapter {
  name: string;
  constructor(name: string) {
    this.name = name;
  }

  key(id: string) {
    return `oidc:${this.name}:${id}`;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number) {
    const key = this.key(id);
    const multi = client.multi();
    if (expiresIn) multi.set(key, JSON.stringify(payload), 'EX', expiresIn);
    else multi.set(key, JSON.stringify(payload));
    if (grantable.has(this.name) && payload.grantId) {
      const grantKey = `oidc:grant:${payload.grantId}`;
      multi.sadd(grantKey, key);
      const ttl = await client.ttl(grantKey);
      if (expiresIn > ttl) multi.expire(grantKey, expiresIn);
    }
    if (payload.userCode) multi.set(`oidc:userCode:${payload.userCode}`, id, 'EX', expiresIn);
    if (payload.uid) multi.set(`oidc:uid:${payload.uid}`, id, 'EX', expiresIn);
    await multi.exec();
  }

  async find(id: string) {
    const data = await client.get(this.key(id));
    return data ? (JSON.parse(data) as AdapterPayload) : undefined;
  }

  async findByUid(uid: string) {
    const id = await client.get(`oidc:uid:${uid}`);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode: string) {
    const id = await client.get(`oidc:userCode:${userCode}`);
    return id ? this.find(id) : undefined;
  }

  async destroy(id: string) {
    await client.del(this.key(id));
  }

  async revokeByGrantId(grantId: string) {
    const grantKey = `oidc:grant:${grantId}`;
    const members = await client.smembers(grantKey);
    // The members are stored with the prefix-less key names the adapter uses.
    const multi = client.multi();
    for (const member of members) multi.del(member);
    multi.del(grantKey);
    await multi.exec();
  }

  async consume(id: string) {
    const key = this.key(id);
    const data = await client.get(key);
    if (!data) return;
    await client.set(key, JSON.stringify({ ...JSON.parse(data), consumed: Math.floor(Date.now() / 1000) }), 'KEEPTTL');
  }
}

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: 'bench', use: 'sig', alg: 'RS256' };

const configuration: Configuration = {
  adapter: RedisAdapter,
  clients: [
    { client_id: 'bench-rs', client_secret: secret, grant_types: [], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic' },
    { client_id: 'bench-service', client_secret: secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'read' },
    {
      client_id: 'bench-cli',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'none',
      scope: 'read offline_access',
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [secret] },
  scopes: ['openid', 'offline_access', 'read'],
  routes: { token: '/oauth/token', introspection: '/oauth/introspect', revocation: '/oauth/revoke', device_authorization: '/oauth/device/code', code_verification: '/device', jwks: '/.well-known/jwks.json' },
  async findAccount(_ctx, sub) {
    return { accountId: sub, claims: async () => ({ sub }) };
  },
  features: {
    devInteractions: { enabled: false },
    // Resource servers only (the default policy lets any authenticated client introspect).
    introspection: { enabled: true, allowedPolicy: async (_ctx, caller) => caller.clientId === 'bench-rs' },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'read', audience: RESOURCE, accessTokenTTL: 3600, accessTokenFormat: 'opaque' }),
    },
  },
  ttl: { AccessToken: 3600, ClientCredentials: 3600, RefreshToken: 30 * 24 * 3600, Grant: 30 * 24 * 3600, DeviceCode: 600, Interaction: 3600, Session: 14 * 24 * 3600, IdToken: 3600, AuthorizationCode: 60 },
};

const provider = new Provider(`http://127.0.0.1:${port}`, configuration);

/** Bench only: grants with a refresh token each, as a completed device login leaves them. */
provider.use(async (ctx, next) => {
  if (ctx.path !== '/bench/mint-refresh' || ctx.method !== 'POST') return next();
  const count = Math.min(1000, Number(ctx.query.count ?? 1));
  const cli = await provider.Client.find('bench-cli');
  if (!cli) throw new Error('bench-cli is missing');
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const accountId = `bench-user-${i}`;
    const grant = new provider.Grant({ accountId, clientId: 'bench-cli' });
    grant.addOIDCScope('offline_access');
    grant.addResourceScope(RESOURCE, 'read');
    const grantId = await grant.save();
    const refreshToken = new provider.RefreshToken({
      accountId,
      client: cli,
      grantId,
      gty: 'urn:ietf:params:oauth:grant-type:device_code',
      resource: RESOURCE,
      rotations: 0,
      scope: 'read offline_access',
      authTime: Math.floor(Date.now() / 1000),
    } as never);
    tokens.push(await refreshToken.save());
  }
  ctx.body = { refresh_tokens: tokens };
});

provider.on('server_error', (_ctx, error: Error) => process.stderr.write(`stock oidc-provider server_error: ${error.stack}\n`));

const server = provider.listen(port, '127.0.0.1') as Server;
server.keepAliveTimeout = 65_000;
server.on('listening', () => {
  const { port: actual } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ listening: `http://127.0.0.1:${actual}` })}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  client.quit().finally(() => process.exit(0));
});
