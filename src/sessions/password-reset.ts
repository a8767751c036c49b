import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AccountService } from '../accounts/account-service.ts';
import type { MailSender } from '../accounts/mail-sender.ts';
import type { User } from '../accounts/user.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Config } from '../config/schema.ts';
import type { FieldError } from '../shared/errors.ts';
import { sha256Base64url } from '../shared/sha256.ts';
import type { PasswordResetRepository } from './password-reset-repository.ts';

// Resetting a forgotten password by e-mail. A request always gets the same answer whether or not
// an account matches (the message goes out in the background, so time does not tell either); it
// is limited per client address (429) and per account (quietly: no further message). The link's
// token is 256 random bits, kept only as its SHA-256, used once (one UPDATE), valid for
// passwordReset.linkTtlSeconds and only while the password is the one it was issued under.
// Setting the new password ends every session and OAuth login of the account.

const HOUR_MS = 3600_000;
const MAX_PASSWORD_LENGTH = 1024;

export interface PasswordResetDependencies {
  config: Pick<Config, 'issuer' | 'passwordReset' | 'passwords' | 'branding'> & { mail: NonNullable<Config['mail']> };
  accounts: AccountService;
  resets: PasswordResetRepository;
  counters: { increment(key: string, windowMs: number): Promise<{ count: number; ttlMs: number }> };
  mail: MailSender;
  audit: AuditLog;
  logger: Logger;
  /** Milliseconds since the epoch; tests inject one. */
  clock?: () => number;
}

export interface RequestContext {
  ip: string;
  userAgent: string | null;
}

export type ResetRequestResult = { status: 'accepted' } | { status: 'limited'; retryAfterSeconds: number; limit: number };

export type ResetResult = { status: 'reset'; user: User; sessions: number; logins: number } | { status: 'invalid'; errors: FieldError[] } | { status: 'invalid_link' };

/** The message: the product, the link and how long it works; nothing else that could be a secret. */
export function resetMessage(product: string, username: string, link: string, ttlSeconds: number): { subject: string; text: string } {
  const minutes = Math.round(ttlSeconds / 60);
  return {
    subject: `Reset your ${product} password`,
    text: [
      `Someone asked to reset the password of the ${product} account "${username}".`,
      '',
      `To choose a new password, open this link within ${minutes} minutes:`,
      '',
      link,
      '',
      'The link works once. Setting a new password signs you out everywhere.',
      'If you did not ask for this, ignore this message: your password stays as it is.',
      '',
    ].join('\n'),
  };
}

export function createPasswordReset(deps: PasswordResetDependencies) {
  const { config, accounts, resets, counters, mail, audit, logger } = deps;
  const clock = deps.clock ?? Date.now;
  const settings = config.passwordReset;

  /** Creates a link for the account and mails it; failures are logged (the requester sees the same page). */
  async function issue(user: User & { email: string }, context: RequestContext): Promise<void> {
    const token = randomBytes(32).toString('base64url');
    const now = clock();
    if (!(await resets.insert({ userId: user.id, tokenSha256: sha256Base64url(token), createdAt: new Date(now), expiresAt: new Date(now + settings.linkTtlSeconds * 1000) }))) return;
    const link = `${config.issuer}/login/reset?token=${token}`;
    await mail.send({ to: user.email, ...resetMessage(config.branding.productName, user.username, link, settings.linkTtlSeconds) });
    audit.recordInBackground({ actor: `ip:${context.ip}`, action: 'password_reset.requested', subject: `user:${user.id}`, ip: context.ip, userAgent: context.userAgent, details: { userId: user.id } });
  }

  return {
    linkTtlSeconds: settings.linkTtlSeconds,

    async request(login: string, context: RequestContext): Promise<ResetRequestResult> {
      const byAddress = await counters.increment(`password-reset:address:{${context.ip}}`, HOUR_MS);
      if (byAddress.count > settings.requestsPerAddressPerHour) return { status: 'limited', retryAfterSeconds: Math.ceil(byAddress.ttlMs / 1000), limit: settings.requestsPerAddressPerHour };
      const user = login.length > 0 && login.length <= 254 ? await accounts.findUserByLogin(login.trim()) : null;
      // In the background: the answer takes the same time whether or not a message goes out.
      void (async () => {
        if (!user || user.disabled || !user.email || !(await accounts.hasPassword(user.id))) return;
        const byAccount = await counters.increment(`password-reset:account:{${user.id}}`, HOUR_MS);
        if (byAccount.count > settings.messagesPerAccountPerHour) return;
        await issue({ ...user, email: user.email }, context);
      })().catch((error: unknown) => logger.error({ err: error }, 'could not send a password-reset message'));
      return { status: 'accepted' };
    },

    /** Whether a link can still be used (the form's page; nothing is consumed). */
    async usable(token: string): Promise<boolean> {
      return typeof token === 'string' && token.length > 0 && token.length <= 128 && (await resets.peek(sha256Base64url(token), new Date(clock()))) !== null;
    },

    async complete(token: string, input: { next: string; repeated: string }, context: RequestContext): Promise<ResetResult> {
      const min = config.passwords.minLength;
      if (input.next.length < min) return { status: 'invalid', errors: [{ field: 'new_password', code: 'too_short', message: `The new password must be at least ${min} characters.` }] };
      if (input.next.length > MAX_PASSWORD_LENGTH) return { status: 'invalid', errors: [{ field: 'new_password', code: 'too_long', message: `The new password must be at most ${MAX_PASSWORD_LENGTH} characters.` }] };
      if (input.next !== input.repeated) return { status: 'invalid', errors: [{ field: 'new_password_again', code: 'mismatch', message: 'The two new passwords differ.' }] };
      if (typeof token !== 'string' || token.length === 0 || token.length > 128) return { status: 'invalid_link' };
      // One UPDATE: of concurrent uses of a link exactly one gets the account.
      const userId = await resets.consume(sha256Base64url(token), new Date(clock()));
      const user = userId && (await accounts.findUserById(userId));
      if (!user) return { status: 'invalid_link' };
      const by = { actor: `user:${user.id}`, ip: context.ip, userAgent: context.userAgent };
      // Every session and OAuth login ends (the admin's "end every sign-in"), then the password changes.
      const ended = await accounts.endSignIns(user.username, by);
      await accounts.changePassword(user.username, input.next, by);
      await audit.record({ ...by, action: 'password_reset.completed', subject: `user:${user.id}`, details: { userId: user.id, ...ended } });
      return { status: 'reset', user, ...ended };
    },
  };
}

export type PasswordReset = ReturnType<typeof createPasswordReset>;
