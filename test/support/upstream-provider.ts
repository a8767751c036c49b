import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

// An institution's identity provider for the tests: stock oidc-provider with its own development
// login and consent pages (devInteractions: any login name, any password), on a port of its own
// and under the host name `localhost`, so that its cookies never meet Tessera's (127.0.0.1).
// Its accounts are the people below; each signs in with their key as the login name.

/** A person's claims at the provider (besides `sub`, which is their login name here). */
export type UpstreamPerson = Record<string, unknown>;

export interface UpstreamProvider {
  issuer: string;
  /** Registers Tessera as a client (confidential, client_secret_basic) with its redirect URI; starts answering. */
  register(client: { clientId: string; redirectUri: string | string[] } & ({ clientSecret: string } | { jwks: { keys: object[] } })): void;
  /**
   * Changes each redirect the provider answers (as a proxy in front of it could), until set back
   * to null: how a test sends a wrong `iss` back to the relying party.
   */
  tamper(rewrite: ((location: URL) => URL) | null): void;
  close(): Promise<void>;
}

/**
 * `claims` maps each scope to the claims it releases (oidc-provider's `claims`), so that a test can
 * give the provider the claim shapes of a known service (ORCID, CILogon, EGI Check-in).
 */
export async function startUpstreamProvider(people: Record<string, UpstreamPerson>, options: { claims?: Record<string, string[]> } = {}): Promise<UpstreamProvider> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  let rewrite: ((location: URL) => URL) | null = null;
  let clientJwks: string | undefined;
  const server: Server = createServer((req, res) => {
    // The client's public keys, fetched by oidc-provider itself (jwks_uri): an object handed over
    // from the test would fail its "plain object" check, which compares constructors across realms.
    if (clientJwks && req.url === '/test-client-jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(clientJwks);
      return;
    }
    if (!handler) {
      res.writeHead(503).end('not configured yet');
      return;
    }
    if (rewrite) {
      const change = rewrite;
      const setHeader = res.setHeader.bind(res);
      res.setHeader = (name, value) => setHeader(name, name.toLowerCase() === 'location' && typeof value === 'string' && /^https?:/.test(value) ? change(new URL(value)).href : value);
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://localhost:${(server.address() as AddressInfo).port}`;
  const claims = options.claims ?? {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name'],
    entitlements: ['eduperson_entitlement', 'groups'],
  };
  return {
    issuer,
    register(client) {
      // A client secret (client_secret_basic), or public keys for private_key_jwt.
      if ('jwks' in client) clientJwks = JSON.stringify(client.jwks);
      const authentication = 'jwks' in client ? { jwks_uri: `${issuer}/test-client-jwks.json`, token_endpoint_auth_method: 'private_key_jwt' as const } : { client_secret: client.clientSecret, token_endpoint_auth_method: 'client_secret_basic' as const };
      const provider = new Provider(issuer, {
        clients: [{ client_id: client.clientId, redirect_uris: [client.redirectUri].flat(), grant_types: ['authorization_code'], response_types: ['code'], ...authentication }],
        async findAccount(_ctx, id) {
          const person = people[id];
          if (!person) return undefined;
          return { accountId: id, claims: async () => ({ sub: id, ...person }) };
        },
        claims,
        scopes: [...new Set(['openid', 'offline_access', ...Object.keys(claims)])],
        features: { devInteractions: { enabled: true } },
        pkce: { required: () => true },
        cookies: { keys: ['upstream-cookie-key-for-the-tests-only-0123456789'] },
      });
      // oidc-provider warns about the development features on the console once; the tests know.
      handler = provider.callback();
    },
    tamper(change) {
      rewrite = change;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
