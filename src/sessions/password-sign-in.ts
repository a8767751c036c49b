import type { Logger } from 'pino';
import type { AccountService, Actor } from '../accounts/account-service.ts';
import type { User } from '../accounts/user.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { AppError } from '../shared/errors.ts';
import { loginAccountKey, signInSource, type LoginLimiter, type UnlockReport } from './login-limiter.ts';

/** Where a password was typed: the API's password login, the settings sign-in, the OAuth sign-in page. */
export type SignInChannel = 'api' | 'browser' | 'oauth';

export interface SignInContext {
  /** The client address (the limits count it as a source: signInSource). */
  ip: string;
  userAgent: string | null;
  via: SignInChannel;
}

export type SignInResult =
  | { status: 'signed_in'; user: User }
  /** Wrong name or password, or a disabled account: the caller tells them apart from nothing. */
  | { status: 'failed' }
  /** Refused before the password was checked: `limit` was reached and resets in `retryAfterSeconds`. */
  | { status: 'limited'; retryAfterSeconds: number; limit: number };

export interface PasswordSignIn {
  /** Throws HashingBusyError when password hashing is saturated (the caller answers 503). */
  attempt(login: string, password: string, context: SignInContext): Promise<SignInResult>;
  /** Lifts the lockouts of the account a name addresses (404 when none does), audited as user.unlocked. */
  unlock(login: string, by: Actor): Promise<{ user: User; report: UnlockReport }>;
}

/**
 * The one password sign-in every channel uses, so that they share one limit per account: the
 * account the name addresses is looked up, the limiter asked, the password checked, the outcome
 * counted. Existing and unknown names take the same steps (docs/design/sign-in-throttling.md).
 */
export function createPasswordSignIn({ accounts, limiter, audit, logger }: { accounts: AccountService; limiter: LoginLimiter; audit: AuditLog; logger: Logger }): PasswordSignIn {
  return {
    async attempt(login, password, { ip, userAgent, via }) {
      const candidate = await accounts.beginSignIn(login);
      const account = loginAccountKey(candidate.user, login);
      const source = signInSource(ip);
      const refusal = await limiter.check(account, source);
      if (refusal) return { status: 'limited', ...refusal };
      const result = await candidate.check(password);
      if (result.ok) {
        await limiter.succeeded(account, source);
        return { status: 'signed_in', user: result.user };
      }
      const lockoutSeconds = await limiter.failed(account, source);
      const user = candidate.user;
      if (user) {
        // Not awaited: an unknown name writes no audit event, and the answer must not take
        // longer for an existing account than for an unknown one.
        audit
          .record({ actor: `ip:${ip}`, action: 'login.failed', subject: `user:${user.id}`, ip, userAgent, details: { reason: result.reason, lockoutSeconds, via } })
          .catch((error: unknown) => logger.warn({ err: error }, 'could not record a failed login in the audit log'));
      }
      return { status: 'failed' };
    },

    async unlock(login, by) {
      const user = await accounts.findUserByLogin(login);
      if (!user) throw AppError.notFound(`No user named "${login}".`);
      const report = await limiter.unlock(loginAccountKey(user, login));
      await audit.record({ ...by, action: 'user.unlocked', subject: `user:${user.id}`, details: { lockedSources: report.lockedSources, paced: report.paced } });
      return { user, report };
    },
  };
}
