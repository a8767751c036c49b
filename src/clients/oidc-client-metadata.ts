// The client metadata oidc-provider's Client model receives, built from a Client.
import type { ClientJwks, ClientKind } from '../config/schema.ts';
import { copyJwks, copyPolicy, type Client, type ClientAuthMethod } from './client.ts';
import { TOKEN_EXCHANGE_GRANT, type TokenExchangePolicy } from '../config/token-exchange-policy.ts';

/**
 * `client_secret` is the hex SHA-256 of the secret, so oidc-provider's compareClientSecret must
 * digest the presented secret before comparing. The `tessera_*` properties must be listed in
 * oidc-provider's `extraClientMetadata.properties`.
 */
export type OidcClientMetadata = {
  client_id: string;
  client_name: string;
  token_endpoint_auth_method: ClientAuthMethod;
  grant_types: string[];
  response_types: string[];
  redirect_uris: string[];
  /** 'client_secret_basic' only: the hex SHA-256 of the secret. */
  client_secret?: string;
  /** 'private_key_jwt' only: the public keys that verify its client assertions (a copy). */
  jwks?: ClientJwks;
  /**
   * The allowed scopes, space-separated: the catalog's names (oidc-provider checks these against
   * its list). Absent when the client has path scopes only (oidc-provider refuses an empty one);
   * Tessera's own checks then bound what it gets (clientScopesOf).
   */
  scope?: string;
  /**
   * The allowed path scopes ("storage.read:/atlas"), space-separated, when there are any: kept
   * apart because oidc-provider accepts in `scope` only the names it was configured with.
   */
  tessera_path_scopes?: string;
  tessera_kind: ClientKind;
  /** The client's default resource, or the global one. */
  tessera_default_resource: string;
  /** Seconds; absent when the global access token lifetime applies. */
  tessera_access_token_ttl?: number;
  /** Present (true) when it may call the introspection endpoint: resource servers, granted service clients. */
  tessera_may_introspect?: true;
  /** Present when it may exchange tokens (RFC 8693): its policy; its grant_types then list the exchange. */
  tessera_token_exchange?: TokenExchangePolicy;
};

/** What each kind fixes in the metadata (how it authenticates: Client.authMethod). */
const KIND_PROFILES: Record<ClientKind, { grantTypes: readonly string[]; responseTypes: readonly string[] }> = {
  device: { grantTypes: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], responseTypes: [] },
  service: { grantTypes: ['client_credentials'], responseTypes: [] },
  resource_server: { grantTypes: [], responseTypes: [] },
  web: { grantTypes: ['authorization_code', 'refresh_token'], responseTypes: ['code'] },
};

/** `secretSha256`: the client's secret digest (null when it has none); `defaultResource`: the global one. */
export function toOidcMetadata(client: Client, secretSha256: string | null, defaultResource: string): OidcClientMetadata {
  const profile = KIND_PROFILES[client.kind];
  const metadata: OidcClientMetadata = {
    client_id: client.clientId,
    client_name: client.name,
    token_endpoint_auth_method: client.authMethod,
    grant_types: [...profile.grantTypes],
    response_types: [...profile.responseTypes],
    redirect_uris: client.kind === 'web' ? [...client.redirectUris] : [],
    tessera_kind: client.kind,
    tessera_default_resource: client.defaultResource ?? defaultResource,
  };
  if (client.authMethod === 'private_key_jwt') {
    metadata.jwks = copyJwks(client.jwks!);
  } else if (client.confidential) {
    // The config schema and a table constraint both guarantee a digest or keys for confidential kinds.
    if (!secretSha256) throw new Error(`client ${client.clientId} is confidential but has neither a secret digest nor keys`);
    metadata.client_secret = secretSha256;
  }
  if (client.accessTokenTtlSeconds !== null) metadata.tessera_access_token_ttl = client.accessTokenTtlSeconds;
  if (client.mayIntrospect) metadata.tessera_may_introspect = true;
  const plainScopes = client.scopes.filter((scope) => !isPathForm(scope));
  if (plainScopes.length) metadata.scope = plainScopes.join(' ');
  const pathScopes = client.scopes.filter(isPathForm);
  if (pathScopes.length) metadata.tessera_path_scopes = pathScopes.join(' ');
  if (client.tokenExchange) {
    metadata.grant_types.push(TOKEN_EXCHANGE_GRANT);
    metadata.tessera_token_exchange = copyPolicy(client.tokenExchange);
  }
  return metadata;
}

/** "name:/path": a path scope (the catalog's check let only path-scoped names have this form). */
const isPathForm = (scope: string) => scope.includes(':/');

/** Every scope a client may obtain, from its metadata: its `scope` and its path scopes. */
export function clientScopesOf(metadata: { scope?: unknown; tessera_path_scopes?: unknown } | undefined | null): string[] {
  return [metadata?.scope, metadata?.tessera_path_scopes].flatMap((value) => (typeof value === 'string' ? value.split(' ').filter(Boolean) : []));
}
