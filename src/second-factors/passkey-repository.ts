import type { Database } from '../store/sql/database.ts';

export interface StoredPasskey {
  id: string;
  userId: string;
  /** base64url, as the authenticator gave it. */
  credentialId: string;
  /** The COSE public key, base64url. */
  publicKey: string;
  signCount: number;
  transports: string[];
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

interface Row {
  id: string;
  user_id: string;
  credential_id: string;
  public_key: string;
  sign_count: string | number;
  transports: string[];
  name: string;
  created_at: Date;
  last_used_at: Date | null;
}

const fromRow = (row: Row): StoredPasskey => ({
  id: row.id,
  userId: row.user_id,
  credentialId: row.credential_id,
  publicKey: row.public_key,
  signCount: Number(row.sign_count),
  transports: row.transports,
  name: row.name,
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
});

export interface PasskeyRepository {
  listForUser(userId: string): Promise<StoredPasskey[]>;
  insert(passkey: Pick<StoredPasskey, 'userId' | 'credentialId' | 'publicKey' | 'signCount' | 'transports' | 'name'>): Promise<StoredPasskey>;
  /** Records a use: only with a counter above the stored one (or 0 for authenticators without one). Atomic. */
  recordUse(id: string, signCount: number): Promise<boolean>;
  remove(userId: string, id: string): Promise<StoredPasskey | null>;
}

export function createPasskeyRepository(database: Database): PasskeyRepository {
  return {
    async listForUser(userId) {
      const { rows } = await database.query<Row>('SELECT * FROM passkey_credentials WHERE user_id = $1 ORDER BY created_at', [userId]);
      return rows.map(fromRow);
    },
    async insert(p) {
      const { rows } = await database.query<Row>(
        'INSERT INTO passkey_credentials (user_id, credential_id, public_key, sign_count, transports, name) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *',
        [p.userId, p.credentialId, p.publicKey, p.signCount, p.transports, p.name],
      );
      return fromRow(rows[0]!);
    },
    async recordUse(id, signCount) {
      const { rowCount } = await database.query('UPDATE passkey_credentials SET sign_count = $2, last_used_at = now() WHERE id = $1 AND (sign_count < $2 OR $2 = 0) RETURNING id', [id, signCount]);
      return rowCount === 1;
    },
    async remove(userId, id) {
      const { rows } = await database.query<Row>('DELETE FROM passkey_credentials WHERE user_id = $1 AND id = $2 RETURNING *', [userId, id]);
      return rows[0] ? fromRow(rows[0]) : null;
    },
  };
}
