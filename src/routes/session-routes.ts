import express, { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import type { AccountService } from '../accounts/account-service.ts';
import { HashingBusyError } from '../accounts/hashing/bounded-hasher.ts';
import type { User } from '../accounts/user.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Config } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import { methodNotAllowed } from '../http/refusals.ts';
import { multipartTextFields } from '../http/multipart-fields.ts';
import type { ApiSession, ApiSessionStore } from '../sessions/api-session-store.ts';
import type { PasswordSignIn } from '../sessions/password-sign-in.ts';
import { configuredSources, presentedCredential } from '../credentials/presented-credential.ts';

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by requireApiSession: who is calling, with which session. */
    apiSession?: { session: ApiSession; user: User; token: string };
  }
}

export interface SessionRouteDependencies {
  config: Config;
  accounts: AccountService;
  sessions: ApiSessionStore;
  signIn: PasswordSignIn;
  audit: AuditLog;
}

/** The same answer for an unknown user, a wrong password and a disabled account. */
const LOGIN_FAILED = 'Login failed: wrong username or password.';

const scopeList = z
  .union([z.string(), z.array(z.string())])
  .optional()
  .transform((value) => (Array.isArray(value) ? value : (value ?? '').split(/[\s,]+/)).filter(Boolean));

/** ArchivesSpace's `expiring` (default true): false asks for a session without idle timeout. */
const expiringFlag = z
  .union([z.boolean(), z.enum(['true', 'false'])])
  .optional()
  .transform((value) => value !== false && value !== 'false');

/**
 * The lifetime of the session a login asks for: undefined for the usual sliding session, the
 * configured maximum for expiring=false; 400 when the configuration refuses those.
 */
function nonExpiringSeconds(config: Config, raw: unknown): number | undefined {
  const expiring = expiringFlag.safeParse(raw);
  if (!expiring.success) throw AppError.validation([{ field: 'expiring', code: 'invalid_type', message: 'expiring must be true or false' }]);
  if (expiring.data) return undefined;
  const max = config.sessions.nonExpiringMaxSeconds;
  if (max === 0) throw AppError.validation([{ field: 'expiring', code: 'not_allowed', message: 'sessions without expiry are turned off here: log in without expiring=false' }]);
  return max;
}

/** Authenticates the caller by an API session token; 401 (with WWW-Authenticate) otherwise. */
export function requireApiSession({ config, accounts, sessions }: Pick<SessionRouteDependencies, 'config' | 'accounts' | 'sessions'>): RequestHandler {
  const challenge = { 'WWW-Authenticate': 'Bearer realm="tessera", error="invalid_token"' };
  const sources = configuredSources(config, { bearer: 'session' });
  return async (req, _res, next) => {
    try {
      const token = presentedCredential(req, sources)?.token;
      if (!token) throw AppError.unauthorized('Authentication required: send an API session token in X-Session or Authorization: Bearer.', { 'WWW-Authenticate': 'Bearer realm="tessera"' });
      const session = await sessions.authenticate(token);
      const user = session && (await accounts.findUserById(session.userId));
      if (!session || !user || user.disabled) throw AppError.unauthorized('The session token is invalid or has expired.', challenge);
      req.apiSession = { session, user, token };
      next();
    } catch (error) {
      next(error);
    }
  };
}

function describeSession(session: ApiSession, current: string | undefined) {
  return {
    id: session.id,
    created_at: session.createdAt.toISOString(),
    last_seen_at: session.lastSeenAt.toISOString(),
    expires_at: session.expiresAt.toISOString(),
    expiring: session.expiring,
    ip: session.ip,
    user_agent: session.userAgent,
    scopes: session.scopes,
    current: session.id === current,
  };
}

/**
 * Password login for API clients (ArchivesSpace style) and the session endpoints around it:
 * POST /users/{username}/login, POST /logout, GET /api/v1/sessions, DELETE /api/v1/sessions/{id}.
 */
export function createSessionRoutes(deps: SessionRouteDependencies): Router {
  const { config, sessions, signIn, audit } = deps;
  const router = Router();
  const authenticated = requireApiSession(deps);

  router.post(
    '/users/:username/login',
    express.raw({ type: 'multipart/form-data', limit: '16kb' }),
    async (req: Request, res: Response, next: NextFunction) => {
      try {
        const username = String(req.params.username);
        const fields: Record<string, unknown> = Buffer.isBuffer(req.body)
          ? multipartTextFields(req.body, req.get('content-type') ?? '')
          : ((req.body as Record<string, unknown> | undefined) ?? {});
        // The query string is accepted for scripts written for ArchivesSpace; it is discouraged
        // (URLs end up in logs and histories) and docs/http-api.md says so.
        const password = fields.password ?? req.query.password;
        if (typeof password !== 'string' || password === '') {
          throw AppError.validation([{ field: 'password', code: 'required', message: 'password is required (form field, JSON field or query parameter)' }]);
        }
        const requested = scopeList.safeParse(fields.scope ?? req.query.scope);
        if (!requested.success) throw AppError.validation([{ field: 'scope', code: 'invalid_type', message: 'scope must be a space- or comma-separated list' }]);
        const lifetime = nonExpiringSeconds(config, fields.expiring ?? req.query.expiring);

        const ip = req.ip ?? 'unknown';
        let result;
        try {
          result = await signIn.attempt(username, password, { ip, userAgent: req.get('user-agent') ?? null, via: 'api' });
        } catch (error) {
          if (error instanceof HashingBusyError) throw new AppError(503, 'busy', 'The service is busy. Try again shortly.', { headers: { 'Retry-After': '1' } });
          throw error;
        }
        if (result.status === 'limited') throw AppError.tooManyRequests(result.retryAfterSeconds, result.limit);
        if (result.status === 'failed') throw new AppError(401, 'login_failed', LOGIN_FAILED);

        const user = result.user;
        const scopes = requested.data.length ? requested.data : user.allowedScopes;
        const refused = scopes.filter((scope) => !user.allowedScopes.includes(scope));
        if (refused.length) {
          throw AppError.validation(refused.map((scope) => ({ field: 'scope', code: 'not_allowed', message: `"${scope}" is not among this account's scopes (${user.allowedScopes.join(', ')})` })));
        }
        const { token, session } = await sessions.create({
          userId: user.id,
          scopes: [...new Set(scopes)],
          ...(lifetime === undefined ? {} : { nonExpiringSeconds: lifetime }),
          ip,
          userAgent: req.get('user-agent') ?? null,
        });
        await audit.record({
          actor: `user:${user.id}`,
          action: 'session.created',
          subject: `user:${user.id}`,
          ip,
          userAgent: req.get('user-agent') ?? null,
          details: { session: session.id, scopes: session.scopes, ...(session.expiring ? {} : { expiring: false }) },
        });
        // What was granted: how long it lives unused, until when, and whether use extends it.
        res.set('Cache-Control', 'no-store').json({
          session: token,
          user: { username: user.username, email: user.email, scopes: session.scopes },
          expires_in: Math.round((session.expiresAt.getTime() - session.lastSeenAt.getTime()) / 1000),
          expires_at: session.expiresAt.toISOString(),
          expiring: session.expiring,
        });
      } catch (error) {
        next(error);
      }
    },
  );
  router.all('/users/:username/login', methodNotAllowed(['POST']));

  router.post('/logout', authenticated, async (req, res, next) => {
    try {
      const { token, session, user } = req.apiSession!;
      await sessions.endByToken(token);
      await audit.record({ actor: `user:${user.id}`, action: 'session.ended', subject: `user:${user.id}`, ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null, details: { session: session.id } });
      res.status(204).end();
    } catch (error) {
      next(error);
    }
  });
  router.all('/logout', methodNotAllowed(['POST']));

  router.get('/api/v1/sessions', authenticated, async (req, res, next) => {
    try {
      const { session, user } = req.apiSession!;
      const live = await sessions.listForUser(user.id);
      res.set('Cache-Control', 'no-store').json({ sessions: live.map((s) => describeSession(s, session.id)) });
    } catch (error) {
      next(error);
    }
  });
  router.all('/api/v1/sessions', methodNotAllowed(['GET']));

  router.delete('/api/v1/sessions/:id', authenticated, async (req, res, next) => {
    try {
      const { user } = req.apiSession!;
      const ended = await sessions.end(user.id, String(req.params.id));
      if (!ended) throw AppError.notFound('No such live session of yours.');
      await audit.record({ actor: `user:${user.id}`, action: 'session.ended', subject: `user:${user.id}`, ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null, details: { session: req.params.id } });
      res.status(204).end();
    } catch (error) {
      next(error);
    }
  });
  router.all('/api/v1/sessions/:id', methodNotAllowed(['DELETE']));

  return router;
}

/** A general limit on the JSON API per client address (429 with Retry-After and RateLimit-* beyond it). */
export function apiRateLimit(config: Config, store: { increment(key: string, windowMs: number): Promise<{ count: number; ttlMs: number }> }): RequestHandler {
  return async (req, _res, next) => {
    try {
      const { count, ttlMs } = await store.increment(`ratelimit:api:${req.ip}`, 60_000);
      if (count > config.api.requestsPerIpPerMinute) throw AppError.tooManyRequests(ttlMs / 1000, config.api.requestsPerIpPerMinute);
      next();
    } catch (error) {
      next(error);
    }
  };
}
