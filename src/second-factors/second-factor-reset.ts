import type { User } from '../accounts/user.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Database } from '../store/sql/database.ts';

/**
 * An administrator's way back in for a person who lost every second factor (phone, recovery codes,
 * passkeys): removes them all in one transaction, audited as second_factor.reset. The person then
 * signs in with the password alone (or is sent to set one up, where the policy requires it).
 */
export interface SecondFactorReset {
  reset(user: User, by: { actor: string; ip?: string | null; userAgent?: string | null }): Promise<{ totp: boolean; passkeys: number; recoveryCodes: number }>;
}

export function createSecondFactorReset({ database, audit }: { database: Database; audit: Pick<AuditLog, 'record'> }): SecondFactorReset {
  return {
    async reset(user, by) {
      const removed = await database.transaction(async (tx) => {
        const codes = await tx.query('DELETE FROM recovery_codes WHERE user_id = $1', [user.id]);
        const totp = await tx.query('DELETE FROM totp_factors WHERE user_id = $1', [user.id]);
        const passkeys = await tx.query('DELETE FROM passkey_credentials WHERE user_id = $1', [user.id]);
        return { totp: totp.rowCount > 0, passkeys: passkeys.rowCount, recoveryCodes: codes.rowCount };
      });
      await audit.record({ ...by, action: 'second_factor.reset', subject: `user:${user.id}`, details: { username: user.username, ...removed } });
      return removed;
    },
  };
}
