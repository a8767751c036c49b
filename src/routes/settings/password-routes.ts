import { Router, type Request, type Response } from 'express';
import { HashingBusyError } from '../../accounts/hashing/bounded-hasher.ts';
import type { AccountService } from '../../accounts/account-service.ts';
import type { AuditLog } from '../../audit/audit-log.ts';
import { ADMIN_SCOPE } from '../../config/admin-scope.ts';
import type { Config } from '../../config/schema.ts';
import { SESSION_COOKIE } from '../../credentials/presented-credential.ts';
import { sendPage } from '../../http/pages.ts';
import type { ApiSessionStore } from '../../sessions/api-session-store.ts';
import type { PasswordChange } from '../../sessions/password-change.ts';
import { rateLimitHeaders } from '../../shared/rate-limit-headers.ts';
import type { CallerAuthenticator } from './caller.ts';
import { passwordPage, type PasswordPageOptions } from './password-pages.ts';

export interface PasswordRouteDependencies {
  config: Config;
  accounts: AccountService;
  passwordChange: PasswordChange;
  sessions: ApiSessionStore;
  audit: AuditLog;
  callers: CallerAuthenticator;
}

const text = (value: unknown) => (typeof value === 'string' ? value : '');

/** /settings/password: a signed-in person changes their own password. */
export function createPasswordRoutes({ config, accounts, passwordChange, sessions, audit, callers }: PasswordRouteDependencies): Router {
  const router = Router();
  const page = callers.requireLoginSession('page');
  const secure = new URL(config.issuer).protocol === 'https:';
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, secure, path: '/' };

  const render = async (req: Request, res: Response, status: number, extra: Partial<PasswordPageOptions> = {}) => {
    const { user, sessionId, scopes } = req.caller!;
    sendPage(
      res,
      status,
      passwordPage({
        username: user.username,
        csrf: callers.csrfFor(sessionId!),
        admin: scopes.includes(ADMIN_SCOPE),
        minLength: config.passwords.minLength,
        hasPassword: await accounts.hasPassword(user.id),
        ...extra,
      }),
    );
  };

  router.get('/settings/password', page, async (req, res, next) => {
    try {
      const ended = Number(req.query.ended);
      await render(req, res, 200, req.query.done === 'changed' ? { changed: { endedSessions: Number.isSafeInteger(ended) && ended >= 0 ? ended : 0 } } : {});
    } catch (error) {
      next(error);
    }
  });

  router.post('/settings/password', page, async (req, res, next) => {
    try {
      const { user, sessionId } = req.caller!;
      const body = (req.body ?? {}) as Record<string, unknown>;
      const ip = req.ip ?? null;
      const userAgent = req.get('user-agent') ?? null;
      const others = (await sessions.listForUser(user.id)).filter((s) => s.id !== sessionId).length;
      let result;
      try {
        result = await passwordChange.change(user, { current: text(body.current_password), next: text(body.new_password), repeated: text(body.new_password_again) }, { actor: `user:${user.id}`, ip, userAgent });
      } catch (error) {
        if (!(error instanceof HashingBusyError)) throw error;
        res.set('Retry-After', '1');
        await render(req, res, 503, { error: 'The service is busy. Try again in a moment.' });
        return;
      }
      if (result.status === 'no_password') {
        await render(req, res, 409, { error: 'Your account has no password of its own.' });
        return;
      }
      if (result.status === 'limited') {
        res.set(rateLimitHeaders(result.limit, result.retryAfterSeconds));
        await render(req, res, 429, { error: `Too many wrong passwords. Try again in ${Math.ceil(result.retryAfterSeconds / 60)} minutes.` });
        return;
      }
      if (result.status === 'invalid') {
        const errors = Object.fromEntries(result.errors.map((e) => [e.field, e.message]));
        await render(req, res, 400, { errors });
        return;
      }
      // Every session ended with the change (this one too): this browser gets a new one.
      const { token, session } = await sessions.create({ userId: user.id, scopes: result.user.allowedScopes, ip, userAgent });
      await audit.record({ actor: `user:${user.id}`, action: 'session.created', subject: `user:${user.id}`, ip, userAgent, details: { session: session.id, via: 'browser', after: 'password_changed' } });
      res.cookie(SESSION_COOKIE, token, { ...cookieOptions, maxAge: config.sessions.absoluteTimeoutSeconds * 1000 });
      res.redirect(303, `/settings/password?done=changed&ended=${others}`);
    } catch (error) {
      next(error);
    }
  });

  return router;
}
