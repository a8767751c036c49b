import type { ClientJwks, ClientKind } from '../config/schema.ts';
import type { TokenExchangePolicy } from '../config/token-exchange-policy.ts';
import type { Database, Queryable } from '../store/sql/database.ts';

/**
 * A client registered at run time, as stored: its secret only as a hex SHA-256 digest, or (for
 * private_key_jwt) its public keys. Device clients have neither; every other kind exactly one.
 */
export interface ClientRecord {
  clientId: string;
  name: string;
  kind: ClientKind;
  /** Null for device clients, which are public, and for clients authenticating with keys. */
  secretSha256: string | null;
  /** The PUBLIC keys of a client authenticating with private_key_jwt; null otherwise. */
  jwks: ClientJwks | null;
  redirectUris: string[];
  scopes: string[];
  defaultResource: string | null;
  accessTokenTtlSeconds: number | null;
  /** Service clients only: granted introspection (resource servers may introspect by their kind). */
  mayIntrospect: boolean;
  /** Confidential kinds only: what it may obtain by token exchange; null: nothing. */
  tokenExchange: TokenExchangePolicy | null;
  createdAt: Date;
  updatedAt: Date;
  secretRotatedAt: Date | null;
  /** When the key set was last replaced; null while it is the one registered at creation. */
  keysRotatedAt: Date | null;
}

export type NewClient = Omit<ClientRecord, 'createdAt' | 'updatedAt' | 'secretRotatedAt' | 'keysRotatedAt'>;

/** Another client already has this id. */
export class ClientIdTaken extends Error {
  readonly clientId: string;

  constructor(clientId: string) {
    super(`client id "${clientId}" already taken`);
    this.name = 'ClientIdTaken';
    this.clientId = clientId;
  }
}

export interface ClientRepository {
  /** Throws ClientIdTaken when the id exists. */
  insert(client: NewClient, connection?: Queryable): Promise<ClientRecord>;
  find(clientId: string, connection?: Queryable): Promise<ClientRecord | null>;
  /** Every stored client, by id. */
  list(): Promise<ClientRecord[]>;
  /** The deleted row, or null when there was none. */
  delete(clientId: string, connection?: Queryable): Promise<ClientRecord | null>;
  /** Replaces the secret digest of a confidential client; null when no such client has one. */
  updateSecret(clientId: string, secretSha256: string, connection?: Queryable): Promise<ClientRecord | null>;
  /** Replaces the public keys of a client using private_key_jwt; null when no such client has keys. */
  updateKeys(clientId: string, jwks: ClientJwks, connection?: Queryable): Promise<ClientRecord | null>;
  /** Grants or withdraws introspection of a service client; null when there is no such service client. */
  updateMayIntrospect(clientId: string, mayIntrospect: boolean, connection?: Queryable): Promise<ClientRecord | null>;
  /** Replaces (or, with null, removes) the token-exchange policy of a confidential client; null when there is no such client. */
  updateTokenExchange(clientId: string, policy: TokenExchangePolicy | null, connection?: Queryable): Promise<ClientRecord | null>;
}

interface ClientRow {
  client_id: string;
  name: string;
  kind: ClientKind;
  secret_sha256: string | null;
  jwks: ClientJwks | null;
  redirect_uris: string[];
  scopes: string[];
  default_resource: string | null;
  access_token_ttl_seconds: number | null;
  may_introspect: boolean;
  token_exchange: TokenExchangePolicy | null;
  created_at: Date;
  updated_at: Date;
  secret_rotated_at: Date | null;
  keys_rotated_at: Date | null;
}

const COLUMNS =
  'client_id, name, kind, secret_sha256, jwks, redirect_uris, scopes, default_resource, access_token_ttl_seconds, may_introspect, token_exchange, created_at, updated_at, secret_rotated_at, keys_rotated_at';

function toRecord(row: ClientRow): ClientRecord {
  return {
    clientId: row.client_id,
    name: row.name,
    kind: row.kind,
    secretSha256: row.secret_sha256,
    jwks: row.jwks,
    redirectUris: row.redirect_uris,
    scopes: row.scopes,
    defaultResource: row.default_resource,
    accessTokenTtlSeconds: row.access_token_ttl_seconds,
    mayIntrospect: row.may_introspect,
    tokenExchange: row.token_exchange,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    secretRotatedAt: row.secret_rotated_at,
    keysRotatedAt: row.keys_rotated_at,
  };
}

export function createClientRepository(database: Database): ClientRepository {
  const one = async (sql: string, params: unknown[], connection: Queryable) => {
    const { rows } = await connection.query<ClientRow>(sql, params);
    return rows[0] ? toRecord(rows[0]) : null;
  };
  return {
    async insert(client, connection = database) {
      try {
        const created = await one(
          `INSERT INTO clients (client_id, name, kind, secret_sha256, jwks, redirect_uris, scopes, default_resource, access_token_ttl_seconds, may_introspect, token_exchange)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11::jsonb) RETURNING ${COLUMNS}`,
          [
            client.clientId,
            client.name,
            client.kind,
            client.secretSha256,
            client.jwks === null ? null : JSON.stringify(client.jwks),
            client.redirectUris,
            client.scopes,
            client.defaultResource,
            client.accessTokenTtlSeconds,
            client.mayIntrospect,
            client.tokenExchange === null ? null : JSON.stringify(client.tokenExchange),
          ],
          connection,
        );
        return created!;
      } catch (error) {
        if ((error as { code?: string }).code === '23505') throw new ClientIdTaken(client.clientId);
        throw error;
      }
    },
    find: (clientId, connection = database) => one(`SELECT ${COLUMNS} FROM clients WHERE client_id = $1`, [clientId], connection),
    async list() {
      const { rows } = await database.query<ClientRow>(`SELECT ${COLUMNS} FROM clients ORDER BY client_id`);
      return rows.map(toRecord);
    },
    delete: (clientId, connection = database) => one(`DELETE FROM clients WHERE client_id = $1 RETURNING ${COLUMNS}`, [clientId], connection),
    updateSecret: (clientId, secretSha256, connection = database) =>
      one(
        `UPDATE clients SET secret_sha256 = $2, secret_rotated_at = now(), updated_at = now()
         WHERE client_id = $1 AND secret_sha256 IS NOT NULL RETURNING ${COLUMNS}`,
        [clientId, secretSha256],
        connection,
      ),
    updateKeys: (clientId, jwks, connection = database) =>
      one(
        `UPDATE clients SET jwks = $2::jsonb, keys_rotated_at = now(), updated_at = now()
         WHERE client_id = $1 AND jwks IS NOT NULL RETURNING ${COLUMNS}`,
        [clientId, JSON.stringify(jwks)],
        connection,
      ),
    updateMayIntrospect: (clientId, mayIntrospect, connection = database) =>
      one(
        `UPDATE clients SET may_introspect = $2, updated_at = now()
         WHERE client_id = $1 AND kind = 'service' RETURNING ${COLUMNS}`,
        [clientId, mayIntrospect],
        connection,
      ),
    updateTokenExchange: (clientId, policy, connection = database) =>
      one(
        `UPDATE clients SET token_exchange = $2::jsonb, updated_at = now()
         WHERE client_id = $1 AND kind <> 'device' RETURNING ${COLUMNS}`,
        [clientId, policy === null ? null : JSON.stringify(policy)],
        connection,
      ),
  };
}
