import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Adapter } from 'oidc-provider';

/**
 * A bare oidc-provider whose only source of clients is `findOidcMetadata`: what a test uses to
 * prove oidc-provider accepts the metadata ClientService produces (Provider.Client.find validates
 * it), without the rest of Tessera's issuer around it.
 */
export async function providerReadingClients(findOidcMetadata: (clientId: string) => Promise<unknown>, apiScopes: string[]): Promise<Provider> {
  const clientAdapter: Adapter = {
    find: async (id) => (await findOidcMetadata(id)) as never,
    upsert: async () => undefined,
    findByUserCode: async () => undefined,
    findByUid: async () => undefined,
    consume: async () => undefined,
    destroy: async () => undefined,
    revokeByGrantId: async () => undefined,
  };
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return new Provider('http://localhost:8080', {
    jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig' }] },
    adapter: () => clientAdapter,
    clients: [],
    scopes: ['openid', 'offline_access', ...apiScopes],
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    features: { devInteractions: { enabled: false }, deviceFlow: { enabled: true }, clientCredentials: { enabled: true }, introspection: { enabled: true }, revocation: { enabled: true } },
    extraClientMetadata: { properties: ['tessera_kind', 'tessera_default_resource', 'tessera_access_token_ttl', 'tessera_may_introspect'] },
  });
}
