import { randomBytes } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { HashingBusyError } from '../../accounts/hashing/bounded-hasher.ts';
import type { AuditLog } from '../../audit/audit-log.ts';
import type { AuditQuery } from '../../audit/audit-query.ts';
import { ADMIN_SCOPE } from '../../config/admin-scope.ts';
import type { Config } from '../../config/schema.ts';
import { AppError } from '../../shared/errors.ts';
import type { ApiSessionStore } from '../../sessions/api-session-store.ts';
import type { PasswordSignIn } from '../../sessions/password-sign-in.ts';
import { rateLimitHeaders } from '../../shared/rate-limit-headers.ts';
import type { PersonalTokenService } from '../../personal-tokens/personal-token-service.ts';
import { sameToken } from '../../http/csrf.ts';
import { localPath } from '../../http/local-path.ts';
import { sendPage } from '../../http/pages.ts';
import { answerOutagesWithPages } from '../../http/error-response.ts';
import type { CallerAuthenticator } from './caller.ts';
import { SESSION_COOKIE } from '../../credentials/presented-credential.ts';
import { cookieValue } from '../../credentials/cookies.ts';
import { providerButtons } from '../identity-providers/identity-provider-pages.ts';
import type { ShownOnce } from '../../http/shown-once.ts';
import { refusedForm, formValues } from '../console/console-views.ts';
import { COPY_SCRIPT, loginPage, revokePage, securityPage, tokenCreatedPage, tokensPage, type TokensPageOptions } from './settings-pages.ts';
import type { SecondFactorStep } from '../second-factor/second-factor-step.ts';
import { createBrowserSessionStarter } from './browser-session.ts';
import { readScope } from '../../shared/path-scopes.ts';

export interface SettingsRouteDependencies {
  config: Config;
  sessions: ApiSessionStore;
  personalTokens: PersonalTokenService;
  audit: AuditLog;
  /** The security log's pages. */
  auditQuery: AuditQuery;
  signIn: PasswordSignIn;
  callers: CallerAuthenticator;
  /** Hands a new token from the POST that made it to the one page that shows it (Post/Redirect/Get). */
  shownOnce: ShownOnce;
  /** The second step after the password (routes/second-factor/second-factor-step.ts). */
  secondStep: SecondFactorStep;
}

const LOGIN_CSRF_COOKIE = 'tessera_login_csrf';

/** Events per page of the security log. */
const SECURITY_PAGE_SIZE = 50;


function formList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  return typeof value === 'string' && value ? [value] : [];
}

/** /login, /logout and the settings pages: personal access tokens and the security log. */
export function createSettingsRoutes(deps: SettingsRouteDependencies): Router {
  const { config, sessions, personalTokens, audit, auditQuery, signIn, callers, shownOnce, secondStep } = deps;
  const startSession = createBrowserSessionStarter({ config, sessions, audit });
  const router = Router();
  const secure = new URL(config.issuer).protocol === 'https:';
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, secure, path: '/' };
  /** Whose pages these are, and whether their navigation leads to the admin console. */
  const viewer = (req: Request) => ({ username: req.caller!.user.username, csrf: callers.csrfFor(req.caller!.sessionId!), admin: req.caller!.scopes.includes(ADMIN_SCOPE) });
  const actor = (req: Request) => ({ actor: `user:${req.caller!.user.id}`, ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });
  /** The upstream identity providers' buttons, leading back to `next` too. */
  const alternatives = (next: string) => providerButtons(config.identityProviders, (p) => `/login/${p.id}?next=${encodeURIComponent(next)}`);

  // The browser's pages answer a store outage as a page (503 with Retry-After).
  router.use(['/login', '/settings'], (_req, res, next) => {
    answerOutagesWithPages(res);
    next();
  });

  router.get('/assets/copy.js', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=3600').type('application/javascript').send(COPY_SCRIPT);
  });

  router.get('/login', (req, res) => {
    const csrf = randomBytes(24).toString('base64url');
    res.cookie(LOGIN_CSRF_COOKIE, csrf, { ...cookieOptions, maxAge: 3600_000 });
    const next = localPath(req.query.next);
    sendPage(res, 200, loginPage({ csrf, next, forgotLink: config.mail !== null, alternatives: alternatives(next) }));
  });

  router.post('/login', async (req, res, next) => {
    try {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const username = typeof body.username === 'string' ? body.username : '';
      const next_ = localPath(body.next);
      const fresh = randomBytes(24).toString('base64url');
      const again = (status: number, error: string) => {
        res.cookie(LOGIN_CSRF_COOKIE, fresh, { ...cookieOptions, maxAge: 3600_000 });
        sendPage(res, status, loginPage({ csrf: fresh, next: next_, error, username, forgotLink: config.mail !== null, alternatives: alternatives(next_) }));
      };
      // Login CSRF: the form's token must match the cookie set with the form (double submit).
      const cookieToken = cookieValue(req.headers.cookie, LOGIN_CSRF_COOKIE) ?? '';
      if (!cookieToken || !sameToken(cookieToken, body.csrf)) {
        again(403, 'The form expired. Please sign in again.');
        return;
      }
      const ip = req.ip ?? 'unknown';
      let result;
      try {
        result = await signIn.attempt(username, typeof body.password === 'string' ? body.password : '', { ip, userAgent: req.get('user-agent') ?? null, via: 'browser' });
      } catch (error) {
        if (!(error instanceof HashingBusyError)) throw error;
        res.set('Retry-After', '1');
        again(503, 'The service is busy. Try again in a moment.');
        return;
      }
      if (result.status === 'limited') {
        res.set(rateLimitHeaders(result.limit, result.retryAfterSeconds));
        again(429, `Too many sign-in attempts. Try again in ${Math.ceil(result.retryAfterSeconds / 60)} minutes.`);
        return;
      }
      if (result.status === 'failed') {
        again(401, 'Wrong username or password.');
        return;
      }
      res.clearCookie(LOGIN_CSRF_COOKIE, cookieOptions);
      // An account with a second factor (or required to have one) gets no session before that step.
      const need = await secondStep.required(result.user);
      if (need !== 'none') {
        await secondStep.begin(res, { userId: result.user.id, via: 'browser', returnTo: next_, enrol: need === 'enrol', firstFactor: 'password' });
        res.redirect(303, need === 'enrol' ? '/login/second-factor/enrol' : '/login/second-factor');
        return;
      }
      await startSession(req, res, result.user);
      res.redirect(303, next_);
    } catch (error) {
      next(error);
    }
  });

  const page = callers.requireLoginSession('page');

  // Signing out of the browser (the cookie session, with its CSRF token). API sessions sent in a
  // header are ended by the API's own POST /logout.
  router.post('/logout', async (req, res, next) => {
    try {
      const cookieSession = cookieValue(req.headers.cookie, SESSION_COOKIE);
      if (!cookieSession || req.get('x-session') || req.get('authorization')) {
        next();
        return;
      }
      await page(req, res, async (error?: unknown) => {
        if (error) {
          next(error);
          return;
        }
        await sessions.endByToken(req.caller!.token);
        await audit.record({ ...actor(req), action: 'session.ended', subject: `user:${req.caller!.user.id}`, details: { session: req.caller!.sessionId, via: 'browser' } });
        res.clearCookie(SESSION_COOKIE, cookieOptions);
        res.redirect(303, '/login');
      });
    } catch (error) {
      next(error);
    }
  });

  router.get('/settings', (_req, res) => res.redirect(302, '/settings/tokens'));

  const renderTokens = async (req: Request, res: Response, status = 200, extra: Pick<TokensPageOptions, 'error' | 'notice' | 'form'> = {}) => {
    const { user } = req.caller!;
    sendPage(
      res,
      status,
      tokensPage({
        ...viewer(req),
        tokens: await personalTokens.list(user.id),
        grantable: grantableScopes(user.allowedScopes),
        expiry: personalTokens.expiry,
        ...extra,
      }),
    );
  };

  router.get('/settings/tokens', page, async (req, res, next) => {
    try {
      // After a revocation (Post/Redirect/Get): its notice, for a token of the caller's that is revoked.
      const revokedId = typeof req.query.revoked === 'string' ? req.query.revoked : undefined;
      const revoked = revokedId ? (await personalTokens.list(req.caller!.user.id)).find((t) => t.id === revokedId && t.revoked) : undefined;
      await renderTokens(req, res, 200, revoked ? { notice: `Revoked “${revoked.name}”.` } : {});
    } catch (error) {
      next(error);
    }
  });

  const pathScoped = new Set(config.pathScopes);
  /** The user's scopes a token may have: catalog names, and path scopes (which may be narrowed further). */
  const grantableScopes = (allowed: string[]): TokensPageOptions['grantable'] =>
    allowed.flatMap((name) => {
      const reading = readScope(name, pathScoped);
      if (reading.kind === 'path') {
        const description = config.scopes[reading.scope.base] ?? reading.scope.base;
        return [{ name, description: reading.scope.path === '/' ? description : `${description} Only under ${reading.scope.path}.`, paths: true }];
      }
      return name in config.scopes ? [{ name, description: config.scopes[name]! }] : [];
    });

  /** A ticked scope narrowed to the path typed beside it ("deposit:write" + "/records/123"). */
  const narrowedScopes = (body: Record<string, unknown>): string[] =>
    formList(body.scopes).map((scope) => {
      const path = body[`path:${scope}`];
      const reading = readScope(scope, pathScoped);
      return reading.kind === 'path' && typeof path === 'string' && path.trim() !== '' ? `${reading.scope.base}:${path.trim()}` : scope;
    });

  /** The service's field names as the form's. */
  const TOKEN_FORM_FIELDS: Record<string, string> = { name: 'name', scopes: 'scopes', expiresInDays: 'expires_in_days' };

  // Post/Redirect/Get: the new token goes to the shown-once store (encrypted, bound to this
  // session) and the browser to the page that takes it; a reload of that page creates nothing
  // and shows nothing. The token never travels in a URL or a cookie.
  router.post('/settings/tokens', page, async (req, res, next) => {
    try {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const expires = body.expires_in_days === 'never' ? null : Number(body.expires_in_days);
      try {
        const { token, record } = await personalTokens.create(req.caller!.user, { name: String(body.name ?? ''), scopes: narrowedScopes(body), expiresInDays: expires }, actor(req));
        const handle = await shownOnce.keep(req.caller!.sessionId!, JSON.stringify({ id: record.id, token }));
        res.redirect(303, `/settings/tokens/created?shown=${handle}`);
      } catch (error) {
        if (!(error instanceof AppError) || error.status !== 400) throw error;
        const form = refusedForm(error, formValues(body, ['scopes']), (field) => TOKEN_FORM_FIELDS[field]);
        await renderTokens(req, res, 400, { form });
      }
    } catch (error) {
      next(error);
    }
  });

  router.get('/settings/tokens/created', page, async (req, res, next) => {
    try {
      const kept = typeof req.query.shown === 'string' ? await shownOnce.take(req.caller!.sessionId!, req.query.shown) : null;
      const handed = kept ? (JSON.parse(kept) as { id: string; token: string }) : null;
      const record = handed && (await personalTokens.list(req.caller!.user.id)).find((t) => t.id === handed.id);
      if (!handed || !record) {
        await renderTokens(req, res, 200, { notice: 'That new token was shown once and cannot be shown again. If you did not copy it, revoke it below and create another.' });
        return;
      }
      sendPage(res, 200, tokenCreatedPage({ ...viewer(req), token: handed.token, record }));
    } catch (error) {
      next(error);
    }
  });

  router.get('/settings/tokens/:id/revoke', page, async (req, res, next) => {
    try {
      const token = (await personalTokens.list(req.caller!.user.id)).find((t) => t.id === req.params.id && !t.revoked);
      if (!token) throw AppError.notFound('No such token of yours.');
      sendPage(res, 200, revokePage({ ...viewer(req), token }));
    } catch (error) {
      next(error);
    }
  });

  router.post('/settings/tokens/:id/revoke', page, async (req, res, next) => {
    try {
      const revoked = await personalTokens.revoke(req.caller!.user.id, String(req.params.id), actor(req));
      res.redirect(303, `/settings/tokens?revoked=${encodeURIComponent(revoked.id)}`);
    } catch (error) {
      next(error);
    }
  });

  router.get('/settings/security', page, async (req, res, next) => {
    try {
      const { user } = req.caller!;
      const before = typeof req.query.before === 'string' ? req.query.before : undefined;
      const page = await auditQuery.page({ userId: user.id }, { limit: SECURITY_PAGE_SIZE, ...(before ? { cursor: before } : {}) });
      sendPage(res, 200, securityPage({ ...viewer(req), userId: user.id, events: page.events, olderCursor: page.nextCursor, paged: before !== undefined }));
    } catch (error) {
      next(error);
    }
  });

  return router;
}
