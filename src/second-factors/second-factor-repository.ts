import type { Database } from '../store/sql/database.ts';

/** A user's authenticator app as stored: the key only sealed (secret-box.ts). */
export interface StoredTotpFactor {
  userId: string;
  secretSealed: string;
  createdAt: Date;
  /** null while the enrolment waits for its first code. */
  confirmedAt: Date | null;
  lastStep: number;
  lastUsedAt: Date | null;
}

interface TotpRow {
  user_id: string;
  secret_sealed: string;
  created_at: Date;
  confirmed_at: Date | null;
  last_step: string | number;
  last_used_at: Date | null;
}

const fromRow = (row: TotpRow): StoredTotpFactor => ({
  userId: row.user_id,
  secretSealed: row.secret_sealed,
  createdAt: row.created_at,
  confirmedAt: row.confirmed_at,
  lastStep: Number(row.last_step),
  lastUsedAt: row.last_used_at,
});

export interface SecondFactorRepository {
  findTotp(userId: string): Promise<StoredTotpFactor | null>;
  /** Starts (or restarts) an enrolment: replaces an unconfirmed factor, never a confirmed one. False when one is confirmed. */
  beginTotp(userId: string, secretSealed: string): Promise<boolean>;
  /**
   * Spends the code of `step`: only when the factor is in the state asked for (`confirmed` false
   * confirms an enrolment) and no code of this step or a newer one was accepted before. Atomic:
   * of concurrent calls with one step, exactly one gets true.
   */
  spendTotpStep(userId: string, step: number, options: { confirmed: boolean; resealed?: string }): Promise<boolean>;
  /** Removes the factor and the recovery codes; false when there was none. */
  removeTotp(userId: string): Promise<boolean>;
  /** Replaces every recovery code of the user with these digests. */
  replaceRecoveryCodes(userId: string, digests: readonly string[]): Promise<void>;
  /** Spends one recovery code by its digest: true once, false ever after (atomic). */
  spendRecoveryCode(userId: string, digest: string): Promise<boolean>;
  /** How many recovery codes are left unused. */
  countRecoveryCodes(userId: string): Promise<number>;
}

export function createSecondFactorRepository(database: Database): SecondFactorRepository {
  return {
    async findTotp(userId) {
      const { rows } = await database.query<TotpRow>('SELECT * FROM totp_factors WHERE user_id = $1', [userId]);
      return rows[0] ? fromRow(rows[0]) : null;
    },

    async beginTotp(userId, secretSealed) {
      const { rowCount } = await database.query(
        `INSERT INTO totp_factors (user_id, secret_sealed) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed, created_at = now(), last_step = 0
         WHERE totp_factors.confirmed_at IS NULL`,
        [userId, secretSealed],
      );
      return rowCount === 1;
    },

    async spendTotpStep(userId, step, { confirmed, resealed }) {
      const { rowCount } = await database.query(
        `UPDATE totp_factors
            SET last_step = $2, last_used_at = now(), confirmed_at = COALESCE(confirmed_at, now()),
                secret_sealed = COALESCE($4, secret_sealed)
          WHERE user_id = $1 AND last_step < $2 AND (confirmed_at IS NOT NULL) = $3
          RETURNING user_id`,
        [userId, step, confirmed, resealed ?? null],
      );
      return rowCount === 1;
    },

    async removeTotp(userId) {
      return database.transaction(async (tx) => {
        await tx.query('DELETE FROM recovery_codes WHERE user_id = $1', [userId]);
        const { rowCount } = await tx.query('DELETE FROM totp_factors WHERE user_id = $1', [userId]);
        return rowCount === 1;
      });
    },

    async replaceRecoveryCodes(userId, digests) {
      await database.transaction(async (tx) => {
        await tx.query('DELETE FROM recovery_codes WHERE user_id = $1', [userId]);
        await tx.query('INSERT INTO recovery_codes (user_id, code_digest) SELECT $1, unnest($2::text[])', [userId, [...digests]]);
      });
    },

    async spendRecoveryCode(userId, digest) {
      const { rowCount } = await database.query('UPDATE recovery_codes SET used_at = now() WHERE user_id = $1 AND code_digest = $2 AND used_at IS NULL RETURNING user_id', [userId, digest]);
      return rowCount === 1;
    },

    async countRecoveryCodes(userId) {
      const { rows } = await database.query<{ n: string | number }>('SELECT count(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL', [userId]);
      return Number(rows[0]?.n ?? 0);
    },
  };
}
