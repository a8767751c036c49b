// The clients of this Tessera: those declared in the configuration (read-only) and those
// registered at run time (stored), with their secrets or public keys.
import type { Actor } from '../accounts/account-service.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { CLIENT_ID, jwkThumbprint, type ClientJwks, type ClientKind, type Config, type DeclaredClient } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import { parseInput } from '../shared/validation.ts';
import type { Database } from '../store/sql/database.ts';
import { fromDeclared, fromRecord, isConfidential, type Client, type ClientListener, type CreateClientInput, type CreatedClient } from './client.ts';
import { createClientSchema, provePublicKeys, rotateKeysSchema, tokenExchangeInputSchema } from './client-input.ts';
import { ClientIdTaken, createClientRepository } from './client-repository.ts';
import { digestClientSecret, generateClientSecret, randomBase62 } from './client-secret.ts';
import { toOidcMetadata, type OidcClientMetadata } from './oidc-client-metadata.ts';

export type { Client, ClientAuthMethod, ClientListener, CreateClientInput, CreatedClient } from './client.ts';
export type { OidcClientMetadata } from './oidc-client-metadata.ts';

export interface ClientServiceOptions {
  database: Database;
  audit: AuditLog;
  /** Clients from the configuration; already validated by the config schema. */
  declared: DeclaredClient[];
  /** The scope catalog: a client's scopes come from it (or are openid / offline_access). */
  scopeCatalog: Record<string, string>;
  /** The catalog's path-scoped names (config.pathScopes). */
  pathScopes?: readonly string[];
  /** oauth.resources: the audiences a client's default resource may name. */
  resources: Config['oauth']['resources'];
  /** oauth.defaultResource. */
  defaultResource: string;
  /** oauth.signingAlgorithm, the one a client may name for signed introspection answers (default RS256, the configuration's default). */
  signingAlgorithm?: Config['oauth']['signingAlgorithm'];
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
  /**
   * Grants (true) or withdraws (false) introspection of a stored service client, on every node at
   * once. 404 for an unknown client, 409 for declared clients and other kinds.
   */
  setIntrospection(clientId: string, mayIntrospect: boolean, by: Actor): Promise<Client>;
  /** Replaces (null: removes) a registered confidential client's token-exchange policy (docs/token-exchange.md). */
  setTokenExchange(clientId: string, policy: unknown, by: Actor): Promise<Client>;
  /** The metadata oidc-provider needs for a client id, or undefined for an unknown one. */
  findOidcMetadata(clientId: string): Promise<OidcClientMetadata | undefined>;
}

/** What the audit log records of a key set: public facts that name each key, never the key itself. */
function describeKeys(jwks: ClientJwks): { kid: string | null; kty: string; crv?: string; thumbprint: string }[] {
  return jwks.keys.map((key) => ({ kid: key.kid ?? null, kty: key.kty, ...(key.crv ? { crv: key.crv } : {}), thumbprint: jwkThumbprint(key) }));
}

function defaultScopes(kind: ClientKind): string[] {
  return kind === 'device' ? ['read', 'offline_access'] : ['read'];
}

function byId(a: Client, b: Client): number {
  return a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0;
}

export function createClientService(options: ClientServiceOptions): ClientService {
  const { database, audit, scopeCatalog, pathScopes = [], resources, listeners = [] } = options;
  const clients = createClientRepository(database);
  const declared = new Map(options.declared.map((client) => [client.clientId, client]));

  const createSchema = createClientSchema(scopeCatalog, resources, options.signingAlgorithm ?? 'RS256', pathScopes);
  const policySchema = tokenExchangeInputSchema(scopeCatalog, resources, pathScopes);

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
              mayIntrospect: valid.kind === 'service' && valid.mayIntrospect === true,
              tokenExchange: valid.tokenExchange ?? null,
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
                ...(created.mayIntrospect ? { mayIntrospect: true } : {}),
                ...(created.tokenExchange ? { tokenExchange: created.tokenExchange } : {}),
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

    async setIntrospection(clientId, mayIntrospect, by) {
      notDeclared(clientId, 'set its mayIntrospect in the configuration instead');
      const existing = CLIENT_ID.test(clientId) ? await clients.find(clientId) : null;
      if (!existing) throw AppError.notFound(`No client "${clientId}".`);
      if (existing.kind !== 'service') {
        throw AppError.conflict(
          `Client "${clientId}" is a ${existing.kind} client: only service clients are granted introspection${existing.kind === 'resource_server' ? ' (resource servers always have it)' : ''}.`,
        );
      }
      const record = await database.transaction(async (tx) => {
        const updated = await clients.updateMayIntrospect(clientId, mayIntrospect, tx);
        if (updated && updated.mayIntrospect !== existing.mayIntrospect) {
          await audit.record({ ...by, action: 'client.introspection_changed', subject: `client:${clientId}`, details: { mayIntrospect } }, tx);
        }
        return updated;
      });
      // Deleted between the two statements.
      if (!record) throw AppError.notFound(`No client "${clientId}".`);
      const client = fromRecord(record);
      for (const listener of listeners) await listener.changed?.(client);
      return client;
    },

    async setTokenExchange(clientId, input, by) {
      notDeclared(clientId, 'set its tokenExchange in the configuration instead');
      const policy = parseInput(policySchema, input);
      const existing = CLIENT_ID.test(clientId) ? await clients.find(clientId) : null;
      if (!existing) throw AppError.notFound(`No client "${clientId}".`);
      if (!isConfidential(existing.kind)) throw AppError.conflict(`Client "${clientId}" is a device client: it cannot authenticate, so it may not exchange tokens.`);
      const record = await database.transaction(async (tx) => {
        const updated = await clients.updateTokenExchange(clientId, policy, tx);
        if (updated) await audit.record({ ...by, action: 'client.token_exchange_changed', subject: `client:${clientId}`, details: { tokenExchange: policy } }, tx);
        return updated;
      });
      // Deleted between the two statements.
      if (!record) throw AppError.notFound(`No client "${clientId}".`);
      const client = fromRecord(record);
      for (const listener of listeners) await listener.changed?.(client);
      return client;
    },

    async findOidcMetadata(clientId) {
      const source = await lookup(clientId);
      if (!source) return undefined;
      const { client, secretSha256 } = source;
      return toOidcMetadata(client, secretSha256, options.defaultResource);
    },
  };
}
