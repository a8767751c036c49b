import type { AccountService, Actor } from '../accounts/account-service.ts';
import { HashingBusyError } from '../accounts/hashing/bounded-hasher.ts';
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
/** Longest attempted name kept in an audit event: a mistyped password must not land there whole. */
const MAX_AUDITED_NAME = 64;

/** The name an unknown-user attempt gave, as given but short and without control characters. */
export function auditedLoginName(login: string): string {
  // eslint-disable-next-line no-control-regex
  return login.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, MAX_AUDITED_NAME);
}

/**
 * The one password sign-in every channel uses, so that they share one limit per account: the
 * account the name addresses is looked up, the limiter asked, the password checked, the outcome
 * counted and audited (sign_in.succeeded, .failed, .locked, .busy: docs/audit.md). Existing and
 * unknown names take the same steps (docs/design/sign-in-throttling.md); the audit events are
 * written in the background, so neither the answer's timing nor a failed write tells them apart.
 */
export function createPasswordSignIn({ accounts, limiter, audit }: { accounts: AccountService; limiter: LoginLimiter; audit: AuditLog }): PasswordSignIn {
  return {
    async attempt(login, password, { ip, userAgent, via }) {
      const candidate = await accounts.beginSignIn(login);
      const user = candidate.user;
      // Who was addressed: the account, or (no account has the name) the name as given.
      const about = user ? { subject: `user:${user.id}` } : { subject: null, username: auditedLoginName(login) };
      const untried = (action: string, details: Record<string, unknown>) =>
        audit.recordInBackground(
          { actor: `ip:${ip}`, action, subject: about.subject, ip, userAgent, details: { via, ...('username' in about ? { username: about.username } : {}), ...details } },
          { untrusted: true },
        );
      const account = loginAccountKey(user, login);
      const source = signInSource(ip);
      const refusal = await limiter.check(account, source);
      if (refusal) {
        untried('sign_in.locked', { retryAfterSeconds: refusal.retryAfterSeconds, limit: refusal.limit });
        return { status: 'limited', ...refusal };
      }
      let result;
      try {
        result = await candidate.check(password);
      } catch (error) {
        if (error instanceof HashingBusyError) untried('sign_in.busy', {});
        throw error;
      }
      if (result.ok) {
        await limiter.succeeded(account, source);
        audit.recordInBackground({ actor: `user:${result.user.id}`, action: 'sign_in.succeeded', subject: `user:${result.user.id}`, ip, userAgent, details: { via } });
        return { status: 'signed_in', user: result.user };
      }
      const lockoutSeconds = await limiter.failed(account, source);
      untried('sign_in.failed', { reason: result.reason, ...(lockoutSeconds > 0 ? { lockoutSeconds } : {}) });
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
