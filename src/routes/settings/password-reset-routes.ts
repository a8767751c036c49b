import { Router, type Response } from 'express';
import { HashingBusyError } from '../../accounts/hashing/bounded-hasher.ts';
import type { Config } from '../../config/schema.ts';
import { sendPage } from '../../http/pages.ts';
import type { PasswordReset } from '../../sessions/password-reset.ts';
import { rateLimitHeaders } from '../../shared/rate-limit-headers.ts';
import { forgotPage, invalidLinkPage, resetDonePage, resetPage } from './password-reset-pages.ts';

export interface PasswordResetRouteDependencies {
  config: Config;
  passwordReset: PasswordReset;
}

const text = (value: unknown) => (typeof value === 'string' ? value : '');

/**
 * /login/forgot and /login/reset: a forgotten password reset through an e-mailed link. Mounted
 * only when mail is configured. The link's token travels in the query (request logs keep query
 * names only) and in a form field; the pages send no referrer.
 */
export function createPasswordResetRoutes({ config, passwordReset }: PasswordResetRouteDependencies): Router {
  const router = Router();
  const minutes = Math.round(passwordReset.linkTtlSeconds / 60);
  const noReferrer = (res: Response) => res.set('Referrer-Policy', 'no-referrer');

  router.get('/login/forgot', (_req, res) => sendPage(res, 200, forgotPage({})));

  router.post('/login/forgot', async (req, res, next) => {
    try {
      const login = text((req.body as Record<string, unknown> | undefined)?.login);
      const result = await passwordReset.request(login, { ip: req.ip ?? 'unknown', userAgent: req.get('user-agent') ?? null });
      if (result.status === 'limited') {
        res.set(rateLimitHeaders(result.limit, result.retryAfterSeconds));
        sendPage(res, 429, forgotPage({ login, error: `Too many requests from your address. Try again in ${Math.ceil(result.retryAfterSeconds / 60)} minutes.` }));
        return;
      }
      sendPage(res, 200, forgotPage({ sent: { minutes } }));
    } catch (error) {
      next(error);
    }
  });

  router.get('/login/reset', async (req, res, next) => {
    try {
      noReferrer(res);
      const token = text(req.query.token);
      if (!(await passwordReset.usable(token))) {
        sendPage(res, 410, invalidLinkPage());
        return;
      }
      sendPage(res, 200, resetPage({ token, minLength: config.passwords.minLength }));
    } catch (error) {
      next(error);
    }
  });

  router.post('/login/reset', async (req, res, next) => {
    try {
      noReferrer(res);
      const body = (req.body ?? {}) as Record<string, unknown>;
      const token = text(body.token);
      let result;
      try {
        result = await passwordReset.complete(token, { next: text(body.new_password), repeated: text(body.new_password_again) }, { ip: req.ip ?? 'unknown', userAgent: req.get('user-agent') ?? null });
      } catch (error) {
        // The link was used (and the sign-ins ended) before the new password could be hashed.
        if (!(error instanceof HashingBusyError)) throw error;
        res.set('Retry-After', '60');
        sendPage(res, 503, invalidLinkPage('The service was too busy to set your password. Your sessions were ended and the link is used up: ask for a new link in a minute.'));
        return;
      }
      if (result.status === 'invalid') {
        if (!(await passwordReset.usable(token))) {
          sendPage(res, 410, invalidLinkPage());
          return;
        }
        sendPage(res, 400, resetPage({ token, minLength: config.passwords.minLength, errors: Object.fromEntries(result.errors.map((e) => [e.field, e.message])) }));
        return;
      }
      if (result.status === 'invalid_link') {
        sendPage(res, 410, invalidLinkPage());
        return;
      }
      // Post/Redirect/Get: a reload does not try the spent link again.
      res.redirect(303, '/login/reset/done');
    } catch (error) {
      next(error);
    }
  });

  router.get('/login/reset/done', (_req, res) => sendPage(res, 200, resetDonePage()));

  return router;
}
