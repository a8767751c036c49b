// What a client is, as the rest of Tessera sees it, and how one is built from the configuration
// or from a database row.
import type { ClientJwks, ClientKind, DeclaredClient } from '../config/schema.ts';
import type { TokenExchangePolicy } from '../config/token-exchange-policy.ts';
import type { ClientRecord } from './client-repository.ts';

/**
 * How a client authenticates at the token, introspection and revocation endpoints (the names of
 * `token_endpoint_auth_method`). 'client_secret_basic' also admits client_secret_post.
 */
export type ClientAuthMethod = 'none' | 'client_secret_basic' | 'private_key_jwt';

/** A client without its secret or the secret's digest; its public keys (private_key_jwt) are no secret. */
export interface Client {
  clientId: string;
  name: string;
  kind: ClientKind;
  /** Whether it authenticates at all (every kind but device): with a secret or with keys. */
  confidential: boolean;
  authMethod: ClientAuthMethod;
  /** The PUBLIC keys verifying its assertions (private_key_jwt only); null otherwise. */
  jwks: ClientJwks | null;
  /** Only web clients have any. */
  redirectUris: string[];
  /** What it may obtain; tokens also never exceed the user's allowed scopes. */
  scopes: string[];
  /** The audience of its tokens when it sends no `resource`; null: the global default. */
  defaultResource: string | null;
  /** Null: the global oauth.accessTokenTtlSeconds. */
  accessTokenTtlSeconds: number | null;
  /**
   * Whether it may call the introspection endpoint: every resource server, and a service client
   * granted it (one registration for a backend that calls APIs and checks tokens).
   */
  mayIntrospect: boolean;
  /** What it may obtain by token exchange (RFC 8693); null: it may not exchange. */
  tokenExchange: TokenExchangePolicy | null;
  /** 'config': declared in the configuration, read-only here. 'database': registered at run time. */
  source: 'config' | 'database';
  /** Null for declared clients. */
  createdAt: Date | null;
  updatedAt: Date | null;
  /** When the secret was last replaced; null while it is the one issued at creation. */
  secretRotatedAt: Date | null;
  /** When the public keys were last replaced; null while they are the ones registered at creation. */
  keysRotatedAt: Date | null;
}

export interface CreateClientInput {
  /** Generated (kind-prefixed, random) when absent. */
  clientId?: string | null;
  name: string;
  kind: ClientKind;
  /** Default: ['read'], plus 'offline_access' for device clients. */
  scopes?: string[];
  redirectUris?: string[];
  defaultResource?: string | null;
  accessTokenTtlSeconds?: number | null;
  /** PUBLIC keys, a JWK Set (not for device clients): the client then uses private_key_jwt and gets no secret. */
  jwks?: unknown;
  /** Grants a service client introspection (default false); resource servers have it anyway. */
  mayIntrospect?: boolean;
  /**
   * RFC 9701 metadata, checked and not kept: signed answers use oauth.signingAlgorithm for every
   * client (so only it may be named), and none is encrypted (so these are refused).
   */
  introspectionSignedResponseAlg?: string | null;
  introspectionEncryptedResponseAlg?: unknown;
  introspectionEncryptedResponseEnc?: unknown;
  /** A TokenExchangePolicy (checked by the service): lets a confidential client exchange people's credentials (RFC 8693); default none. */
  tokenExchange?: unknown;
}

/** A created client, and its secret (null for device clients and clients with keys): shown once, never stored. */
export interface CreatedClient {
  client: Client;
  secret: string | null;
}

/** Told about changes that must end what a client had: grants, cached introspections. */
export interface ClientListener {
  /** A new client (caches that remembered its id as unknown must forget that). */
  created?(client: Client): Promise<void>;
  deleted?(client: Client): Promise<void>;
  secretRotated?(client: Client): Promise<void>;
  /** What it may do changed (introspection granted or withdrawn): cached metadata must go. */
  changed?(client: Client): Promise<void>;
}

export function isConfidential(kind: ClientKind): boolean {
  return kind !== 'device';
}

/** Resource servers introspect by their kind; only service clients may be granted it besides. */
export function mayIntrospect(kind: ClientKind, granted: boolean | undefined): boolean {
  return kind === 'resource_server' || (kind === 'service' && granted === true);
}

/** Device clients are public; the other kinds use their keys when they have some, else their secret. */
function authMethodOf(kind: ClientKind, jwks: ClientJwks | null | undefined): ClientAuthMethod {
  if (!isConfidential(kind)) return 'none';
  return jwks ? 'private_key_jwt' : 'client_secret_basic';
}

/**
 * A copy of a key set, so that no caller can change another's. Not structuredClone: oidc-provider
 * wants plain objects of its own realm (`constructor === Object`).
 */
export function copyJwks(jwks: ClientJwks): ClientJwks {
  return { keys: jwks.keys.map((key) => ({ ...key })) };
}

/** A copy of a policy, so that no caller can change another's (plain objects, as for copyJwks). */
export function copyPolicy(policy: TokenExchangePolicy): TokenExchangePolicy {
  return { subjectTokenKinds: [...policy.subjectTokenKinds], audiences: [...policy.audiences], scopes: [...policy.scopes] };
}

export function fromDeclared(client: DeclaredClient): Client {
  return {
    clientId: client.clientId,
    name: client.name,
    kind: client.kind,
    confidential: isConfidential(client.kind),
    authMethod: authMethodOf(client.kind, client.jwks),
    jwks: client.jwks ? copyJwks(client.jwks) : null,
    redirectUris: client.kind === 'web' ? client.redirectUris : [],
    scopes: client.scopes,
    defaultResource: client.defaultResource ?? null,
    accessTokenTtlSeconds: client.accessTokenTtlSeconds ?? null,
    mayIntrospect: mayIntrospect(client.kind, client.mayIntrospect),
    tokenExchange: client.tokenExchange ? copyPolicy(client.tokenExchange) : null,
    source: 'config',
    createdAt: null,
    updatedAt: null,
    secretRotatedAt: null,
    keysRotatedAt: null,
  };
}

export function fromRecord(record: ClientRecord): Client {
  return {
    clientId: record.clientId,
    name: record.name,
    kind: record.kind,
    confidential: isConfidential(record.kind),
    authMethod: authMethodOf(record.kind, record.jwks),
    jwks: record.jwks,
    redirectUris: record.redirectUris,
    scopes: record.scopes,
    defaultResource: record.defaultResource,
    accessTokenTtlSeconds: record.accessTokenTtlSeconds,
    mayIntrospect: mayIntrospect(record.kind, record.mayIntrospect),
    tokenExchange: record.tokenExchange ? copyPolicy(record.tokenExchange) : null,
    source: 'database',
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    secretRotatedAt: record.secretRotatedAt,
    keysRotatedAt: record.keysRotatedAt,
  };
}
