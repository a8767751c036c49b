import type { Database } from '../store/sql/database.ts';

// The password_resets table (migrations/0019): a link's digest, its account, its life. A link is
// usable while it is unconsumed, unexpired, and the account's password is the one it was issued
// under (and the account is enabled); consuming is one UPDATE, so of concurrent uses one wins.

export interface PasswordResetRepository {
  /** Stores a link for the account; false when there is no such account. */
  insert(input: { userId: string; tokenSha256: string; createdAt: Date; expiresAt: Date }): Promise<boolean>;
  /** The account a usable link is for, without using it (the form's page). */
  peek(tokenSha256: string, now: Date): Promise<string | null>;
  /** Marks a usable link used and returns its account; null when it is not usable (any more). */
  consume(tokenSha256: string, now: Date): Promise<string | null>;
}

const USABLE = `r.consumed_at IS NULL AND r.expires_at > $2 AND u.id = r.user_id AND u.password_changed_at = r.password_changed_at AND NOT u.disabled`;

export function createPasswordResetRepository(database: Database): PasswordResetRepository {
  return {
    async insert({ userId, tokenSha256, createdAt, expiresAt }) {
      const result = await database.query(
        `INSERT INTO password_resets (user_id, token_sha256, password_changed_at, created_at, expires_at)
         SELECT id, $2, password_changed_at, $3, $4 FROM users WHERE id = $1`,
        [userId, tokenSha256, createdAt, expiresAt],
      );
      return (result.rowCount ?? 0) > 0;
    },

    async peek(tokenSha256, now) {
      const result = await database.query<{ user_id: string }>(`SELECT r.user_id FROM password_resets r, users u WHERE r.token_sha256 = $1 AND ${USABLE}`, [tokenSha256, now]);
      return result.rows[0]?.user_id ?? null;
    },

    async consume(tokenSha256, now) {
      const result = await database.query<{ user_id: string }>(
        `UPDATE password_resets r SET consumed_at = $2 FROM users u WHERE r.token_sha256 = $1 AND ${USABLE} RETURNING r.user_id`,
        [tokenSha256, now],
      );
      return result.rows[0]?.user_id ?? null;
    },
  };
}
