import type { Database, Queryable } from '../store/sql/database.ts';
import type { User, UserWithSecret } from './user.ts';

interface UserRow {
  id: string;
  username: string;
  email: string | null;
  password_hash: string | null;
  allowed_scopes: string[];
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
  password_changed_at: Date;
}

const COLUMNS = 'id, username, email, password_hash, allowed_scopes, disabled, created_at, updated_at, password_changed_at';

function toUser(row: UserRow): UserWithSecret {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    passwordHash: row.password_hash,
    allowedScopes: row.allowed_scopes,
    disabled: row.disabled,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    passwordChangedAt: row.password_changed_at,
  };
}

export function withoutSecret({ passwordHash: _hash, ...user }: UserWithSecret): User {
  return user;
}

export interface NewUser {
  username: string;
  email: string | null;
  /** Null: no local password (an account made by an identity provider). */
  passwordHash: string | null;
  allowedScopes: string[];
}

export class UniqueViolation extends Error {
  readonly field: 'username' | 'email';

  constructor(field: 'username' | 'email') {
    super(`${field} already taken`);
    this.field = field;
  }
}

export interface UserRepository {
  insert(user: NewUser, connection?: Queryable): Promise<UserWithSecret>;
  findById(id: string): Promise<UserWithSecret | null>;
  /** Case-insensitive. */
  findByUsername(username: string): Promise<UserWithSecret | null>;
  /** Username or e-mail, case-insensitive. */
  findByLogin(login: string): Promise<UserWithSecret | null>;
  list(options: { limit: number; offset: number }): Promise<UserWithSecret[]>;
  /**
   * In username order (case-insensitive), after the username `after` if given; `query` matches
   * a part of the username or e-mail, any case.
   */
  search(options: { query?: string; after?: string; limit: number }): Promise<UserWithSecret[]>;
  count(): Promise<number>;
  /** Replaces the hash; `passwordChanged` false for a transparent rehash that must not end sessions. */
  updatePasswordHash(id: string, passwordHash: string, passwordChanged: boolean): Promise<boolean>;
  setDisabled(id: string, disabled: boolean): Promise<boolean>;
  setAllowedScopes(id: string, scopes: string[]): Promise<boolean>;
  /** Throws UniqueViolation('email') when another account has it. */
  setEmail(id: string, email: string | null): Promise<boolean>;
  /** Deletes the account and, with it, its personal tokens (ON DELETE CASCADE). */
  delete(id: string): Promise<boolean>;
}

/** A LIKE pattern matching `text` anywhere, its own % _ and \ taken literally. */
function containing(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function uniqueViolation(error: unknown): UniqueViolation | null {
  const pgError = error as { code?: string; constraint?: string; message?: string };
  if (pgError.code !== '23505') return null;
  const where = `${pgError.constraint ?? ''} ${pgError.message ?? ''}`;
  return new UniqueViolation(where.includes('email') ? 'email' : 'username');
}

export function createUserRepository(database: Database): UserRepository {
  const one = async (sql: string, params: unknown[], connection: Queryable = database) => {
    const { rows } = await connection.query<UserRow>(sql, params);
    return rows[0] ? toUser(rows[0]) : null;
  };
  return {
    async insert(user, connection = database) {
      try {
        const created = await one(
          `INSERT INTO users (username, email, password_hash, allowed_scopes) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
          [user.username, user.email, user.passwordHash, user.allowedScopes],
          connection,
        );
        return created!;
      } catch (error) {
        throw uniqueViolation(error) ?? error;
      }
    },
    findById: (id) =>
      /^[0-9a-f-]{36}$/i.test(id) ? one(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id]) : Promise.resolve(null),
    findByUsername: (username) => one(`SELECT ${COLUMNS} FROM users WHERE lower(username) = lower($1)`, [username]),
    findByLogin: (login) =>
      one(`SELECT ${COLUMNS} FROM users WHERE lower(username) = lower($1) OR lower(email) = lower($1) ORDER BY lower(username) = lower($1) DESC LIMIT 1`, [login]),
    async list({ limit, offset }) {
      const { rows } = await database.query<UserRow>(`SELECT ${COLUMNS} FROM users ORDER BY lower(username) LIMIT $1 OFFSET $2`, [limit, offset]);
      return rows.map(toUser);
    },
    async search({ query, after, limit }) {
      const { rows } = await database.query<UserRow>(
        `SELECT ${COLUMNS} FROM users
         WHERE ($1::text IS NULL OR lower(username) LIKE lower($1) OR lower(email) LIKE lower($1))
           AND ($2::text IS NULL OR lower(username) > lower($2))
         ORDER BY lower(username) LIMIT $3`,
        [query ? containing(query) : null, after ?? null, limit],
      );
      return rows.map(toUser);
    },
    async count() {
      const { rows } = await database.query<{ n: number }>('SELECT count(*)::int AS n FROM users');
      return rows[0]!.n;
    },
    async updatePasswordHash(id, passwordHash, passwordChanged) {
      const { rowCount } = await database.query(
        `UPDATE users SET password_hash = $2, updated_at = now()${passwordChanged ? ', password_changed_at = now()' : ''} WHERE id = $1`,
        [id, passwordHash],
      );
      return rowCount > 0;
    },
    async setDisabled(id, disabled) {
      const { rowCount } = await database.query('UPDATE users SET disabled = $2, updated_at = now() WHERE id = $1', [id, disabled]);
      return rowCount > 0;
    },
    async setAllowedScopes(id, scopes) {
      const { rowCount } = await database.query('UPDATE users SET allowed_scopes = $2, updated_at = now() WHERE id = $1', [id, scopes]);
      return rowCount > 0;
    },
    async setEmail(id, email) {
      try {
        const { rowCount } = await database.query('UPDATE users SET email = $2, updated_at = now() WHERE id = $1', [id, email]);
        return rowCount > 0;
      } catch (error) {
        throw uniqueViolation(error) ?? error;
      }
    },
    async delete(id) {
      const { rowCount } = await database.query('DELETE FROM users WHERE id = $1', [id]);
      return rowCount > 0;
    },
  };
}
