import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Adapter } from 'oidc-provider';
import { createOidcAdapterFactory } from '../../src/oauth/adapter/oidc-adapter.ts';
import { oidcKeyFor } from '../../src/oauth/adapter/oidc-keys.ts';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { createMemoryEphemeralStore } from '../../src/store/ephemeral/memory-ephemeral-store.ts';

const CLIENT_ID = 'batch-service';
const CLIENT_SECRET = 'a-long-enough-client-secret-for-the-test-only';

/** Clients are not the adapter's business: the static one below is all there is. */
const noClients: Adapter = {
  async find() {
    return undefined;
  },
  async upsert() {},
  async findByUid() {
    return undefined;
  },
  async findByUserCode() {
    return undefined;
  },
  async consume() {},
  async destroy() {},
  async revokeByGrantId() {},
};

describe('the oidc-provider adapter inside a real Provider', () => {
  let store: EphemeralStore;
  let provider: Provider;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    store = createMemoryEphemeralStore({});
    const adapterFor = createOidcAdapterFactory(store);
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    provider = new Provider('http://tessera.test', {
      adapter: (name: string) => (name === 'Client' ? noClients : adapterFor(name)),
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }],
      jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'test', alg: 'RS256', use: 'sig' }] as never },
      features: {
        clientCredentials: { enabled: true },
        revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
        devInteractions: { enabled: false },
      },
      ttl: { ClientCredentials: 600 },
    });
    server = createServer(provider.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await store.close();
  });

  const basic = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
  const post = (path: string, form: Record<string, string>) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form),
    });

  it('issues a client_credentials token that is stored by digest, found, and revoked', async () => {
    const response = await post('/token', { grant_type: 'client_credentials' });
    expect(response.status).toBe(200);
    const { access_token: token, expires_in: expiresIn } = (await response.json()) as { access_token: string; expires_in: number };
    expect(expiresIn).toBe(600);

    const found = await provider.ClientCredentials.find(token);
    expect(found).toMatchObject({ jti: token, clientId: CLIENT_ID, kind: 'ClientCredentials' });
    const stored = await store.get(oidcKeyFor('ClientCredentials', token));
    expect(stored).not.toBeNull();
    expect(stored).not.toContain(token);
    expect(await store.ttl(oidcKeyFor('ClientCredentials', token))).toBeGreaterThan(595_000);

    expect((await post('/token/revocation', { token })).status).toBe(200);
    expect(await provider.ClientCredentials.find(token)).toBeUndefined();
  });
});
