import type { AccountService, Actor } from '../accounts/account-service.ts';
import type { User } from '../accounts/user.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { AppError, type FieldError } from '../shared/errors.ts';
import { loginAccountKey, signInSource, type LoginLimiter } from './login-limiter.ts';

// A signed-in person changing their own password: the current one is checked under the same
// per-account and per-address limits as a sign-in (a stolen session must not become a password
// oracle), the new one obeys the same rules as everywhere (account-service's schema), and the
// change ends every session of the account (the passwordChanged listener); the caller opens a
// fresh one for the browser it came from.

export type PasswordChangeResult =
  | { status: 'changed'; user: User }
  /** The form's fields to mark, with what is wrong with each. */
  | { status: 'invalid'; errors: FieldError[] }
  | { status: 'limited'; retryAfterSeconds: number; limit: number }
  /** The account has no password of its own (it signs in through an identity provider). */
  | { status: 'no_password' };

export interface PasswordChangeInput {
  current: string;
  next: string;
  repeated: string;
}

export function createPasswordChange({ accounts, limiter, audit }: { accounts: AccountService; limiter: LoginLimiter; audit: AuditLog }) {
  return {
    async change(user: User, input: PasswordChangeInput, by: Actor & { ip: string | null }): Promise<PasswordChangeResult> {
      if (!(await accounts.hasPassword(user.id))) return { status: 'no_password' };
      if (input.next !== input.repeated) return { status: 'invalid', errors: [{ field: 'new_password_again', code: 'mismatch', message: 'The two new passwords differ.' }] };
      const account = loginAccountKey(user, user.username);
      const source = signInSource(by.ip ?? 'unknown');
      const refusal = await limiter.check(account, source);
      if (refusal) return { status: 'limited', ...refusal };
      const checked = await (await accounts.beginSignIn(user.username)).check(input.current);
      if (!checked.ok || checked.user.id !== user.id) {
        await limiter.failed(account, source);
        await audit.record({ ...by, action: 'user.password_change_refused', subject: `user:${user.id}`, details: { reason: 'wrong_password' } });
        return { status: 'invalid', errors: [{ field: 'current_password', code: 'wrong_password', message: 'That is not your current password.' }] };
      }
      await limiter.succeeded(account, source);
      if (input.next === input.current) return { status: 'invalid', errors: [{ field: 'new_password', code: 'unchanged', message: 'The new password is your current one: choose another.' }] };
      // account-service validates the new password (the rules of every password) and audits user.password_changed.
      try {
        return { status: 'changed', user: await accounts.changePassword(user.username, input.next, by) };
      } catch (error) {
        if (!(error instanceof AppError) || error.status !== 400) throw error;
        return { status: 'invalid', errors: (error.errors ?? []).map((e) => ({ ...e, field: 'new_password', message: `The new password ${e.message}.` })) };
      }
    },
  };
}

export type PasswordChange = ReturnType<typeof createPasswordChange>;
