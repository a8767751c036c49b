import { importJWK } from 'jose';
import { z } from 'zod';
import type { Actor } from '../accounts/account-service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import {
  CLIENT_ID,
  CLIENT_KINDS,
  clientJwksSchema,
  jwkThumbprint,
  type ClientJwks,
  type ClientKind,
  type ClientPublicJwk,
  type Config,
  type DeclaredClient,
} from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import { parseInput } from '../shared/validation.ts';
import type { Database } from '../store/sql/database.ts';
import { ClientIdTaken, createClientRepository, type ClientRecord } from './client-repository.ts';
import { digestClientSecret, generateClientSecret, randomBase62 } from './client-secret.ts';

/**
 * How a client authenticates at the token, introspection and revocation endpoints (the names of
 * RFC 7591 `token_endpoint_auth_method`). 'client_secret_basic' also admits client_secret_post.
 */
export type ClientAuthMethod = 'none' | 'client_secret_basic' | 'private_key_jwt';

/**
 * A client as people and other services see it: never its secret, nor the secret's digest. A
 * client using private_key_jwt carries its public keys, which are no secret.
 */
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
  /**
   * The client's PUBLIC keys, a JWK Set (service, resource_server and web clients): it then
   * authenticates with private_key_jwt and gets no secret. Validated here (see clientJwksSchema).
   */
  jwks?: unknown;
}

/** A created client, and its secret (null for device clients and clients with keys): shown once, never stored. */
export interface CreatedClient {
  client: Client;
  secret: string | null;
}

/**
 * What oidc-provider's Client model receives for a client id. `client_secret` is the hex SHA-256
 * of the secret: oidc-provider's compareClientSecret must be overridden to digest the presented
 * secret before comparing (`secretMatches(this.clientSecret, presented)`). A client using
 * private_key_jwt has `jwks` (its public keys) instead of `client_secret`. The `tessera_*`
 * properties must be listed in oidc-provider's `extraClientMetadata.properties`.
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
  /** The allowed scopes, space-separated. */
  scope: string;
  tessera_kind: ClientKind;
  /** The client's default resource, or the global one. */
  tessera_default_resource: string;
  /** Seconds; absent when the global access token lifetime applies. */
  tessera_access_token_ttl?: number;
};

/** Told about changes that must end what a client had: grants, cached introspections. */
export interface ClientListener {
  /** A new client (caches that remembered its id as unknown must forget that). */
  created?(client: Client): Promise<void>;
  deleted?(client: Client): Promise<void>;
  secretRotated?(client: Client): Promise<void>;
}

export interface ClientServiceOptions {
  database: Database;
  audit: AuditLog;
  /** Clients from the configuration; already validated by the config schema. */
  declared: DeclaredClient[];
  /** The scope catalog: a client's scopes come from it (or are openid / offline_access). */
  scopeCatalog: Record<string, string>;
  /** oauth.resources: the audiences a client's default resource may name. */
  resources: Config['oauth']['resources'];
  /** oauth.defaultResource. */
  defaultResource: string;
  listeners?: ClientListener[];
}

export interface ClientService {
  create(input: CreateClientInput, by: Actor): Promise<CreatedClient>;
  /** Declared and stored clients, by id. A stored client whose id is also declared is hidden. */
  list(): Promise<Client[]>;
  /** A declared client first, then a stored one; null when neither. */
  find(clientId: string): Promise<Client | null>;
  /** Deletes a stored client: 404 when unknown, 409 when declared in the configuration. */
  delete(clientId: string, by: Actor): Promise<Client>;
  /**
   * Replaces the secret of a stored client that has one; the old one stops working at once. 409
   * for device clients and clients using private_key_jwt.
   */
  rotateSecret(clientId: string, by: Actor): Promise<string>;
  /**
   * Replaces the public keys of a stored client using private_key_jwt (a JWK Set, validated like at
   * creation): assertions signed by a key not in the new set stop working at once, and the
   * client's tokens are revoked as on a secret rotation. 409 for other clients.
   */
  rotateKeys(clientId: string, jwks: unknown, by: Actor): Promise<Client>;
  /** The metadata oidc-provider needs for a client id, or undefined for an unknown one. */
  findOidcMetadata(clientId: string): Promise<OidcClientMetadata | undefined>;
}

/** What each kind fixes in oidc-provider's client metadata (how it authenticates: authMethodOf). */
const KIND_PROFILES: Record<ClientKind, { grantTypes: readonly string[]; responseTypes: readonly string[] }> = {
  device: { grantTypes: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], responseTypes: [] },
  service: { grantTypes: ['client_credentials'], responseTypes: [] },
  resource_server: { grantTypes: [], responseTypes: [] },
  web: { grantTypes: ['authorization_code', 'refresh_token'], responseTypes: ['code'] },
};

/** Kinds whose tokens may come with an ID token or a refresh token. */
const USER_FACING_KINDS: ReadonlySet<ClientKind> = new Set(['device', 'web']);

/** Scopes oidc-provider itself understands, allowed beside the catalog. */
const PROTOCOL_SCOPES: ReadonlySet<string> = new Set(['openid', 'offline_access']);

const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

const MAX_REDIRECT_URI_LENGTH = 2000;

/** Why a redirect URI is refused, or null when it is acceptable. */
function redirectUriProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.protocol === 'http:') {
    if (!LOOPBACK_HOSTS.has(url.hostname)) return 'must use https (http is allowed only for localhost)';
  } else if (url.protocol !== 'https:') {
    return 'must use https (http is allowed only for localhost)';
  }
  if (value.includes('#')) return 'must not contain a fragment';
  if (url.username || url.password) return 'must not contain a user name or password';
  return null;
}

function isConfidential(kind: ClientKind): boolean {
  return kind !== 'device';
}

/** Device clients are public; the other kinds use their keys when they have some, else their secret. */
function authMethodOf(kind: ClientKind, jwks: ClientJwks | null | undefined): ClientAuthMethod {
  if (!isConfidential(kind)) return 'none';
  return jwks ? 'private_key_jwt' : 'client_secret_basic';
}

/** The algorithm a key without `alg` is imported for, to prove it parses. */
function defaultAlgorithm(key: ClientPublicJwk): string {
  if (key.kty === 'RSA') return 'RS256';
  if (key.kty === 'OKP') return 'EdDSA';
  return key.crv === 'P-384' ? 'ES384' : key.crv === 'P-521' ? 'ES512' : 'ES256';
}

/**
 * A copy of a key set, so that no caller can change the configuration's or another caller's. (Not
 * structuredClone: oidc-provider wants plain objects of its own realm, `constructor === Object`.)
 */
function copyJwks(jwks: ClientJwks): ClientJwks {
  return { keys: jwks.keys.map((key) => ({ ...key })) };
}

/** What the audit log records of a key set: public facts that name each key, never the key itself. */
function describeKeys(jwks: ClientJwks): { kid: string | null; kty: string; crv?: string; thumbprint: string }[] {
  return jwks.keys.map((key) => ({ kid: key.kid ?? null, kty: key.kty, ...(key.crv ? { crv: key.crv } : {}), thumbprint: jwkThumbprint(key) }));
}

function defaultScopes(kind: ClientKind): string[] {
  return kind === 'device' ? ['read', 'offline_access'] : ['read'];
}

function fromDeclared(client: DeclaredClient): Client {
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
    source: 'config',
    createdAt: null,
    updatedAt: null,
    secretRotatedAt: null,
    keysRotatedAt: null,
  };
}

function fromRecord(record: ClientRecord): Client {
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
    source: 'database',
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    secretRotatedAt: record.secretRotatedAt,
    keysRotatedAt: record.keysRotatedAt,
  };
}

function byId(a: Client, b: Client): number {
  return a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0;
}

export function createClientService(options: ClientServiceOptions): ClientService {
  const { database, audit, scopeCatalog, resources, listeners = [] } = options;
  const clients = createClientRepository(database);
  const declared = new Map(options.declared.map((client) => [client.clientId, client]));

  const scopesSchema = z
    .array(z.string())
    .min(1, { message: 'must name at least one scope' })
    .superRefine((scopes, context) => {
      scopes.forEach((scope, index) => {
        if (!Object.hasOwn(scopeCatalog, scope) && !PROTOCOL_SCOPES.has(scope)) {
          context.addIssue({
            code: 'custom',
            path: [index],
            message: `unknown scope "${scope}" (known: ${[...Object.keys(scopeCatalog), ...PROTOCOL_SCOPES].join(', ')})`,
          });
        }
      });
    })
    .transform((scopes) => [...new Set(scopes)]);

  const redirectUriSchema = z
    .string()
    .max(MAX_REDIRECT_URI_LENGTH, { message: `must be at most ${MAX_REDIRECT_URI_LENGTH} characters` })
    .superRefine((value, context) => {
      const problem = redirectUriProblem(value);
      if (problem) context.addIssue({ code: 'custom', message: problem });
    });

  const createSchema = z
    .object({
      clientId: z.string().regex(CLIENT_ID, { message: 'must be 1–128 characters: letters, digits and . _ : -, starting with a letter or digit' }).nullish(),
      name: z.string().trim().min(1, { message: 'must not be empty' }).max(200, { message: 'must be at most 200 characters' }),
      kind: z.enum(CLIENT_KINDS, { message: `must be one of ${CLIENT_KINDS.join(', ')}` }),
      scopes: scopesSchema.optional(),
      redirectUris: z.array(redirectUriSchema).max(20, { message: 'at most 20 redirect URIs' }).optional(),
      defaultResource: z
        .string()
        .superRefine((resource, context) => {
          if (!Object.hasOwn(resources, resource)) context.addIssue({ code: 'custom', message: `unknown resource "${resource}" (known: ${Object.keys(resources).join(', ')})` });
        })
        .nullish(),
      accessTokenTtlSeconds: z.number().int({ message: 'must be a whole number of seconds' }).min(60, { message: 'must be at least 60' }).max(86400, { message: 'must be at most 86400' }).nullish(),
      jwks: clientJwksSchema.nullish(),
    })
    .superRefine((input, context) => {
      const redirectUris = input.redirectUris ?? [];
      if (input.kind === 'web' && redirectUris.length === 0) {
        context.addIssue({ code: 'custom', path: ['redirectUris'], message: 'a web client needs at least one redirect URI' });
      }
      if (input.kind !== 'web' && redirectUris.length > 0) {
        context.addIssue({ code: 'custom', path: ['redirectUris'], message: `only web clients have redirect URIs, not ${input.kind} clients` });
      }
      if (input.jwks && !isConfidential(input.kind)) {
        context.addIssue({ code: 'custom', path: ['jwks'], message: `a ${input.kind} client is public: it has no keys` });
      }
      if (!USER_FACING_KINDS.has(input.kind)) {
        (input.scopes ?? []).forEach((scope, index) => {
          if (PROTOCOL_SCOPES.has(scope)) {
            context.addIssue({ code: 'custom', path: ['scopes', index], message: `"${scope}" is only for clients acting for a user (device, web), not ${input.kind} clients` });
          }
        });
      }
    });

  /**
   * Proves each key imports with jose, for the algorithm it names (or the usual one for its type),
   * as the public key it must be. The schema already checked its members and parsed it with
   * node:crypto; this is the library that verifies assertions saying it can use the key.
   */
  async function provePublicKeys(jwks: ClientJwks, field: string): Promise<void> {
    for (const [index, key] of jwks.keys.entries()) {
      let problem: string | null = null;
      try {
        const imported = await importJWK({ ...key }, key.alg ?? defaultAlgorithm(key));
        if (imported instanceof Uint8Array || imported.type !== 'public') problem = 'is not a public key';
      } catch (error) {
        problem = `is not a usable public key (${(error as Error).message})`;
      }
      if (problem) throw AppError.validation([{ field: `${field}.keys.${index}`, code: 'invalid_key', message: problem }]);
    }
  }

  /** The input of rotateKeys, under the same field name as at creation. */
  const rotateKeysSchema = z.object({ jwks: clientJwksSchema });

  /** Declared clients change only with the configuration; `instead` says how. */
  function notDeclared(clientId: string, instead: string): void {
    if (declared.has(clientId)) throw AppError.conflict(`Client "${clientId}" is declared in the configuration: ${instead}.`);
  }

  /** A declared client first, then a stored one, with its secret digest (null for device clients). */
  async function lookup(clientId: string): Promise<{ client: Client; secretSha256: string | null } | null> {
    const fromConfig = declared.get(clientId);
    if (fromConfig) return { client: fromDeclared(fromConfig), secretSha256: fromConfig.secretSha256 ?? null };
    if (!CLIENT_ID.test(clientId)) return null;
    const record = await clients.find(clientId);
    return record && { client: fromRecord(record), secretSha256: record.secretSha256 };
  }

  return {
    async create(input, by) {
      const valid = parseInput(createSchema, input);
      const clientId = valid.clientId ?? `${valid.kind.replace('_', '-')}-${randomBase62(16)}`;
      if (declared.has(clientId)) {
        throw AppError.conflict(`A client "${clientId}" is declared in the configuration.`, [{ field: 'clientId', code: 'taken', message: 'declared in the configuration' }]);
      }
      const jwks = valid.jwks ?? null;
      if (jwks) await provePublicKeys(jwks, 'jwks');
      const secret = isConfidential(valid.kind) && !jwks ? generateClientSecret() : null;
      try {
        const record = await database.transaction(async (tx) => {
          const created = await clients.insert(
            {
              clientId,
              name: valid.name,
              kind: valid.kind,
              secretSha256: secret === null ? null : digestClientSecret(secret),
              jwks,
              redirectUris: valid.redirectUris ? [...new Set(valid.redirectUris)] : [],
              scopes: valid.scopes ?? defaultScopes(valid.kind),
              defaultResource: valid.defaultResource ?? null,
              accessTokenTtlSeconds: valid.accessTokenTtlSeconds ?? null,
            },
            tx,
          );
          await audit.record(
            {
              ...by,
              action: 'client.created',
              subject: `client:${created.clientId}`,
              details: {
                name: created.name,
                kind: created.kind,
                scopes: created.scopes,
                redirectUris: created.redirectUris,
                defaultResource: created.defaultResource,
                accessTokenTtlSeconds: created.accessTokenTtlSeconds,
                ...(created.jwks ? { authMethod: 'private_key_jwt', keys: describeKeys(created.jwks) } : {}),
              },
            },
            tx,
          );
          return created;
        });
        const client = fromRecord(record);
        for (const listener of listeners) await listener.created?.(client);
        return { client, secret };
      } catch (error) {
        if (error instanceof ClientIdTaken) {
          throw AppError.conflict(`A client "${clientId}" already exists.`, [{ field: 'clientId', code: 'taken', message: 'already taken' }]);
        }
        throw error;
      }
    },

    async list() {
      const stored = (await clients.list()).filter((record) => !declared.has(record.clientId)).map(fromRecord);
      return [...[...declared.values()].map(fromDeclared), ...stored].sort(byId);
    },

    async find(clientId) {
      return (await lookup(clientId))?.client ?? null;
    },

    async delete(clientId, by) {
      notDeclared(clientId, 'remove it from the "clients" list of the configuration instead');
      const record = CLIENT_ID.test(clientId)
        ? await database.transaction(async (tx) => {
            const deleted = await clients.delete(clientId, tx);
            if (deleted) {
              await audit.record({ ...by, action: 'client.deleted', subject: `client:${clientId}`, details: { name: deleted.name, kind: deleted.kind } }, tx);
            }
            return deleted;
          })
        : null;
      if (!record) throw AppError.notFound(`No client "${clientId}".`);
      const client = fromRecord(record);
      for (const listener of listeners) await listener.deleted?.(client);
      return client;
    },

    async rotateSecret(clientId, by) {
      notDeclared(clientId, 'put the SHA-256 of a new secret in its secretSha256 in the configuration instead');
      const existing = CLIENT_ID.test(clientId) ? await clients.find(clientId) : null;
      if (!existing) throw AppError.notFound(`No client "${clientId}".`);
      if (!isConfidential(existing.kind)) {
        throw AppError.conflict(`Client "${clientId}" is a device client: it is public and has no secret to rotate.`);
      }
      if (existing.jwks) {
        throw AppError.conflict(
          `Client "${clientId}" authenticates with private_key_jwt and has no secret: replace its public keys instead (tessera client rotate-keys ${clientId} --jwks-file PATH).`,
        );
      }
      const secret = generateClientSecret();
      const record = await database.transaction(async (tx) => {
        const updated = await clients.updateSecret(clientId, digestClientSecret(secret), tx);
        if (updated) await audit.record({ ...by, action: 'client.secret_rotated', subject: `client:${clientId}`, details: { kind: updated.kind } }, tx);
        return updated;
      });
      // Deleted between the two statements.
      if (!record) throw AppError.notFound(`No client "${clientId}".`);
      const client = fromRecord(record);
      for (const listener of listeners) await listener.secretRotated?.(client);
      return secret;
    },

    async rotateKeys(clientId, input, by) {
      notDeclared(clientId, 'put its new public keys in its jwks in the configuration instead');
      const { jwks } = parseInput(rotateKeysSchema, { jwks: input });
      await provePublicKeys(jwks, 'jwks');
      const existing = CLIENT_ID.test(clientId) ? await clients.find(clientId) : null;
      if (!existing) throw AppError.notFound(`No client "${clientId}".`);
      if (!isConfidential(existing.kind)) {
        throw AppError.conflict(`Client "${clientId}" is a device client: it is public and has no keys.`);
      }
      if (!existing.jwks) {
        throw AppError.conflict(
          `Client "${clientId}" authenticates with a client secret, not private_key_jwt: it has no keys to replace (a client keeps the method it was created with; rotate its secret with tessera client rotate-secret ${clientId}).`,
        );
      }
      const record = await database.transaction(async (tx) => {
        const updated = await clients.updateKeys(clientId, jwks, tx);
        if (updated) {
          await audit.record(
            { ...by, action: 'client.keys_rotated', subject: `client:${clientId}`, details: { kind: updated.kind, keys: describeKeys(jwks), previousKeys: describeKeys(existing.jwks!) } },
            tx,
          );
        }
        return updated;
      });
      // Deleted between the two statements.
      if (!record) throw AppError.notFound(`No client "${clientId}".`);
      const client = fromRecord(record);
      for (const listener of listeners) await listener.secretRotated?.(client);
      return client;
    },

    async findOidcMetadata(clientId) {
      const source = await lookup(clientId);
      if (!source) return undefined;
      const { client, secretSha256 } = source;
      const profile = KIND_PROFILES[client.kind];
      const metadata: OidcClientMetadata = {
        client_id: client.clientId,
        client_name: client.name,
        token_endpoint_auth_method: client.authMethod,
        grant_types: [...profile.grantTypes],
        response_types: [...profile.responseTypes],
        redirect_uris: client.kind === 'web' ? [...client.redirectUris] : [],
        scope: client.scopes.join(' '),
        tessera_kind: client.kind,
        tessera_default_resource: client.defaultResource ?? options.defaultResource,
      };
      if (client.authMethod === 'private_key_jwt') {
        metadata.jwks = copyJwks(client.jwks!);
      } else if (client.confidential) {
        // The config schema and a table constraint both guarantee a digest or keys for confidential kinds.
        if (!secretSha256) throw new Error(`client ${client.clientId} is confidential but has neither a secret digest nor keys`);
        metadata.client_secret = secretSha256;
      }
      if (client.accessTokenTtlSeconds !== null) metadata.tessera_access_token_ttl = client.accessTokenTtlSeconds;
      return metadata;
    },
  };
}
