import type { Database, Queryable } from '../store/sql/database.ts';

/**
 * A personal access token as stored, without its digest: the digest is only ever an input (to
 * insert and to look up by), so it never leaves this module. The value itself is never stored.
 */
export interface PersonalTokenRecord {
  id: string;
  userId: string;
  name: string;
  /** The prefix and first random characters, for people to recognise the token. */
  hint: string;
  scopes: string[];
  createdAt: Date;
  /** Null: never expires. */
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  lastUsedIp: string | null;
  /** Null while the token has not been revoked. */
  revokedAt: Date | null;
}

export interface NewPersonalToken {
  userId: string;
  name: string;
  /** tokenFormat.digest(value). */
  digest: string;
  hint: string;
  scopes: string[];
  createdAt: Date;
  expiresAt: Date | null;
}

/** What verifying a token needs to know about its owner, read in the same query as the token. */
export interface PersonalTokenOwner {
  id: string;
  username: string;
  email: string | null;
  disabled: boolean;
  allowedScopes: string[];
}

export interface PersonalTokenWithOwner {
  token: PersonalTokenRecord;
  owner: PersonalTokenOwner;
}

export interface RotatedPersonalToken {
  /** The old token, now revoked. */
  revoked: PersonalTokenRecord;
  created: PersonalTokenRecord;
}

export interface PersonalTokenRepository {
  insert(token: NewPersonalToken, connection?: Queryable): Promise<PersonalTokenRecord>;
  /** Every token of the user, active, expired and revoked alike, newest first. */
  listForUser(userId: string): Promise<PersonalTokenRecord[]>;
  /** The token with this digest and its owner, whatever the token's state; null when none. */
  findByDigest(digest: string): Promise<PersonalTokenWithOwner | null>;
  /** The token with this id, whatever its state; null when none. */
  findById(id: string): Promise<PersonalTokenRecord | null>;
  /**
   * Revokes the token if it is the user's and not revoked yet, atomically: of concurrent callers
   * exactly one gets the record, the others null.
   */
  revoke(id: string, userId: string, at: Date, connection?: Queryable): Promise<PersonalTokenRecord | null>;
  /**
   * In one transaction: revokes the user's token if it is neither revoked nor expired at `at`,
   * inserts the replacement built from it, then runs `within` (e.g. an audit record) on the same
   * transaction. Null, with nothing changed, when there was no such active token.
   */
  rotate(
    id: string,
    userId: string,
    at: Date,
    replacement: (old: PersonalTokenRecord) => NewPersonalToken,
    within?: (tx: Queryable, rotated: RotatedPersonalToken) => Promise<void>,
  ): Promise<RotatedPersonalToken | null>;
  /** Records a use; never moves last_used_at backwards. False when no row changed. */
  touchLastUsed(id: string, at: Date, ip: string | null): Promise<boolean>;
}

interface TokenRow {
  id: string;
  user_id: string;
  name: string;
  token_hint: string;
  scopes: string[];
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  last_used_ip: string | null;
  revoked_at: Date | null;
}

interface TokenWithOwnerRow extends TokenRow {
  owner_username: string;
  owner_email: string | null;
  owner_disabled: boolean;
  owner_allowed_scopes: string[];
}

/** Never token_digest: see PersonalTokenRecord. */
const COLUMNS = 'id, user_id, name, token_hint, scopes, created_at, expires_at, last_used_at, last_used_ip, revoked_at';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The longest client address kept (an IPv6 address with a zone fits easily). */
const MAX_IP_LENGTH = 100;

function toRecord(row: TokenRow): PersonalTokenRecord {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    hint: row.token_hint,
    scopes: row.scopes,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    lastUsedIp: row.last_used_ip,
    revokedAt: row.revoked_at,
  };
}

export function createPersonalTokenRepository(database: Database): PersonalTokenRepository {
  const one = async (sql: string, params: unknown[], connection: Queryable) => {
    const { rows } = await connection.query<TokenRow>(sql, params);
    return rows[0] ? toRecord(rows[0]) : null;
  };

  const insert = async (token: NewPersonalToken, connection: Queryable) =>
    (await one(
      `INSERT INTO personal_tokens (user_id, name, token_digest, token_hint, scopes, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [token.userId, token.name, token.digest, token.hint, token.scopes, token.createdAt, token.expiresAt],
      connection,
    ))!;

  return {
    insert: (token, connection = database) => insert(token, connection),

    async listForUser(userId) {
      if (!UUID.test(userId)) return [];
      const { rows } = await database.query<TokenRow>(
        `SELECT ${COLUMNS} FROM personal_tokens WHERE user_id = $1 ORDER BY created_at DESC, id DESC`,
        [userId],
      );
      return rows.map(toRecord);
    },

    async findByDigest(digest) {
      const { rows } = await database.query<TokenWithOwnerRow>(
        `SELECT t.id, t.user_id, t.name, t.token_hint, t.scopes, t.created_at, t.expires_at, t.last_used_at, t.last_used_ip, t.revoked_at,
                u.username AS owner_username, u.email AS owner_email, u.disabled AS owner_disabled, u.allowed_scopes AS owner_allowed_scopes
         FROM personal_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_digest = $1`,
        [digest],
      );
      const row = rows[0];
      if (!row) return null;
      return {
        token: toRecord(row),
        owner: { id: row.user_id, username: row.owner_username, email: row.owner_email, disabled: row.owner_disabled, allowedScopes: row.owner_allowed_scopes },
      };
    },

    findById: (id) => (UUID.test(id) ? one(`SELECT ${COLUMNS} FROM personal_tokens WHERE id = $1`, [id], database) : Promise.resolve(null)),

    revoke: (id, userId, at, connection = database) =>
      UUID.test(id) && UUID.test(userId)
        ? one(
            `UPDATE personal_tokens SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING ${COLUMNS}`,
            [id, userId, at],
            connection,
          )
        : Promise.resolve(null),

    async rotate(id, userId, at, replacement, within) {
      if (!UUID.test(id) || !UUID.test(userId)) return null;
      return database.transaction(async (tx) => {
        const revoked = await one(
          `UPDATE personal_tokens SET revoked_at = $3
           WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)
           RETURNING ${COLUMNS}`,
          [id, userId, at],
          tx,
        );
        if (!revoked) return null;
        const created = await insert(replacement(revoked), tx);
        const rotated = { revoked, created };
        await within?.(tx, rotated);
        return rotated;
      });
    },

    async touchLastUsed(id, at, ip) {
      const { rowCount } = await database.query(
        'UPDATE personal_tokens SET last_used_at = $2, last_used_ip = $3 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)',
        [id, at, ip === null ? null : ip.slice(0, MAX_IP_LENGTH)],
      );
      return rowCount > 0;
    },
  };
}
