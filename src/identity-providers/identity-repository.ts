import type { Database } from '../store/sql/database.ts';

/** One identity at an upstream provider, linked to one account (migrations/0015_user_identities.sql). */
export interface LinkedIdentity {
  provider: string;
  subject: string;
  userId: string;
  email: string | null;
  linkedAt: Date;
  lastUsedAt: Date | null;
}

interface IdentityRow {
  provider: string;
  subject: string;
  user_id: string;
  email: string | null;
  linked_at: Date;
  last_used_at: Date | null;
}

const COLUMNS = 'provider, subject, user_id, email, linked_at, last_used_at';

const toIdentity = (row: IdentityRow): LinkedIdentity => ({ provider: row.provider, subject: row.subject, userId: row.user_id, email: row.email, linkedAt: row.linked_at, lastUsedAt: row.last_used_at });

export interface IdentityRepository {
  find(provider: string, subject: string): Promise<LinkedIdentity | null>;
  listForUser(userId: string): Promise<LinkedIdentity[]>;
  /** Links the identity; false when it is linked already (to this account or another). */
  link(identity: { provider: string; subject: string; userId: string; email: string | null }): Promise<boolean>;
  /** Records a sign-in with it (and the e-mail the provider gave this time). */
  touch(provider: string, subject: string, email: string | null): Promise<void>;
  /** Removes the link if it belongs to `userId`; false when there was none. */
  unlink(userId: string, provider: string, subject: string): Promise<boolean>;
}

export function createIdentityRepository(database: Database): IdentityRepository {
  return {
    async find(provider, subject) {
      const { rows } = await database.query<IdentityRow>(`SELECT ${COLUMNS} FROM user_identities WHERE provider = $1 AND subject = $2`, [provider, subject]);
      return rows[0] ? toIdentity(rows[0]) : null;
    },
    async listForUser(userId) {
      const { rows } = await database.query<IdentityRow>(`SELECT ${COLUMNS} FROM user_identities WHERE user_id = $1 ORDER BY provider, linked_at`, [userId]);
      return rows.map(toIdentity);
    },
    async link({ provider, subject, userId, email }) {
      const { rowCount } = await database.query(
        'INSERT INTO user_identities (provider, subject, user_id, email, last_used_at) VALUES ($1, $2, $3, $4, now()) ON CONFLICT (provider, subject) DO NOTHING',
        [provider, subject, userId, email],
      );
      return rowCount > 0;
    },
    async touch(provider, subject, email) {
      await database.query('UPDATE user_identities SET last_used_at = now(), email = $3 WHERE provider = $1 AND subject = $2', [provider, subject, email]);
    },
    async unlink(userId, provider, subject) {
      const { rowCount } = await database.query('DELETE FROM user_identities WHERE user_id = $1 AND provider = $2 AND subject = $3', [userId, provider, subject]);
      return rowCount > 0;
    },
  };
}
