import express, { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import type { AccountService } from '../accounts/account-service.ts';
import { HashingBusyError } from '../accounts/hashing/bounded-hasher.ts';
import type { User } from '../accounts/user.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { Config } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import { methodNotAllowed } from '../http/refusals.ts';
import { defineOperation, route } from '../http/api-operation.ts';
import { errorResponse, LIMITED_API_FAILURES, RATE_LIMIT_HEADERS, TOO_LARGE, UNAUTHENTICATED, VALIDATION_FAILED } from '../http/common-responses.ts';
import { multipartTextFields } from '../http/multipart-fields.ts';
import type { ApiSession, ApiSessionStore } from '../sessions/api-session-store.ts';
import type { PasswordSignIn } from '../sessions/password-sign-in.ts';
import type { SecondFactorService } from '../second-factors/second-factor-service.ts';
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
  /** Accounts with a second factor log in with `otp` too (docs/second-factors.md). */
  secondFactors: Pick<SecondFactorService, 'hasFactor' | 'requiredByPolicy' | 'check'>;
}

/**
 * The same answer for an unknown user, a wrong password, a disabled account and an account without
 * a password (made by an identity provider): telling the last apart would tell a stranger which
 * names exist, so every failure carries the hint (docs/sign-in-providers.md).
 */
const LOGIN_FAILED = 'Login failed: wrong username or password. An account that signs in through an identity provider has no password here: use a personal access token (Settings, Access tokens).';

/** A scope list: a string separated by spaces or commas, or an array; undefined when not sent. */
const scopeList = z
  .union([z.string(), z.array(z.string())], { error: 'must be a space- or comma-separated list' })
  .optional()
  .transform((value) => (value === undefined ? undefined : (Array.isArray(value) ? value : value.split(/[\s,]+/)).filter(Boolean)));

/** ArchivesSpace's `expiring` (default true): false asks for a session without idle timeout. */
const expiringFlag = z
  .union([z.boolean(), z.enum(['true', 'false'])], { error: 'must be true or false' })
  .optional()
  .transform((value) => (value === undefined ? undefined : value !== false && value !== 'false'));

/** What a login may send, in its body (form, multipart or JSON) or, for old scripts, its query. */
const loginFields = z.object({
  password: z.string().optional().meta({ description: 'Required, in the body or (discouraged: URLs end up in logs) the query.' }),
  otp: z.string().max(64).optional().meta({ description: 'For an account with two-step sign-in: the current code of its authenticator app (6 digits), or one of its recovery codes. Like `password`, in the body (or the query).' }),
  scope: scopeList.meta({ description: "The scopes asked for, separated by spaces or commas; the account's allowed scopes by default." }),
  expiring: expiringFlag.meta({ description: '`false` asks for a session without idle timeout (ends `TESSERA_SESSION_NON_EXPIRING_MAX` after login).' }),
});

const loginAnswer = z.object({
  session: z.string().meta({ description: 'The API session token, `tsr_ses_…`.' }),
  user: z.object({ username: z.string(), email: z.string().nullable(), scopes: z.array(z.string()) }),
  expires_in: z.number().int().meta({ description: 'Seconds the session lives unused.' }),
  expires_at: z.iso.datetime().meta({ description: 'When it ends unless used before.' }),
  expiring: z.boolean().meta({ description: 'False for a session without idle timeout.' }),
});

const sessionSchema = z.object({
  id: z.string(),
  created_at: z.iso.datetime(),
  last_seen_at: z.iso.datetime(),
  expires_at: z.iso.datetime(),
  expiring: z.boolean(),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  scopes: z.array(z.string()),
  current: z.boolean().meta({ description: 'The session of the token this request carries.' }),
});

const TAG = 'API sessions';

export const loginOperation = defineOperation({
  method: 'post',
  path: '/users/:username/login',
  operationId: 'login',
  summary: 'Log in with a password; answers an API session token',
  description: 'ArchivesSpace-style. An unknown user, a wrong password and a disabled account get the same `401` (and cost the same time).',
  tag: TAG,
  credentials: [],
  params: z.object({ username: z.string().meta({ description: 'The username or e-mail address.' }) }),
  query: loginFields,
  body: { schema: loginFields, contentTypes: ['application/x-www-form-urlencoded', 'multipart/form-data', 'application/json'] },
  responses: {
    200: { description: 'Logged in.', body: loginAnswer },
    400: VALIDATION_FAILED,
    401: errorResponse('Login failed: wrong username or password (`login_failed`): an account that signs in through an identity provider has no password here, use a personal access token (Settings, Access tokens); or the account has two-step sign-in and `otp` was not sent (`otp_required`) or is wrong or used (`otp_invalid`).'),
    403: errorResponse('The operator requires two-step sign-in for this account and it has none yet (`second_factor_required`): set it up in the settings pages first.'),
    413: TOO_LARGE,
    ...LIMITED_API_FAILURES,
    429: errorResponse('Too many failed logins for this account from this address, too many wrong `otp` codes for the account, or too many requests from the address.', RATE_LIMIT_HEADERS),
    503: errorResponse('Password hashing is saturated (`Retry-After: 1`), or a store is unreachable.', { 'Retry-After': 'Seconds to wait.' }),
  },
});

export const logoutOperation = defineOperation({
  method: 'post',
  path: '/logout',
  operationId: 'logout',
  summary: 'End the current session',
  description: 'With an API session token: `204`. With the browser session cookie (and its CSRF token): `303` to `/login`.',
  tag: TAG,
  credentials: ['apiSession', 'browserSession'],
  responses: {
    204: { description: 'The API session has ended.' },
    303: { description: 'The browser session has ended: to the sign-in page.', headers: { Location: '`/login`.' } },
    401: UNAUTHENTICATED,
    ...LIMITED_API_FAILURES,
  },
});

export const listSessionsOperation = defineOperation({
  method: 'get',
  path: '/api/v1/sessions',
  operationId: 'listSessions',
  summary: "The user's live API sessions",
  tag: TAG,
  credentials: ['apiSession'],
  responses: { 200: { description: 'The live sessions.', body: z.object({ sessions: z.array(sessionSchema) }) }, 401: UNAUTHENTICATED, ...LIMITED_API_FAILURES },
});

export const endSessionOperation = defineOperation({
  method: 'delete',
  path: '/api/v1/sessions/:id',
  operationId: 'endSession',
  summary: 'End one of the user\'s sessions',
  tag: TAG,
  credentials: ['apiSession'],
  params: z.object({ id: z.string().meta({ description: "The session's id (from the list), not its token." }) }),
  responses: { 204: { description: 'Ended.' }, 401: UNAUTHENTICATED, 404: errorResponse('No such live session of yours.'), ...LIMITED_API_FAILURES },
});

/**
 * The lifetime of the session a login asks for: undefined for the usual sliding session, the
 * configured maximum for expiring=false; 400 when the configuration refuses those.
 */
function nonExpiringSeconds(config: Config, expiring: boolean | undefined): number | undefined {
  if (expiring !== false) return undefined;
  const max = config.sessions.nonExpiringMaxSeconds;
  if (max === 0) throw AppError.validation([{ field: 'expiring', code: 'not_allowed', message: 'sessions without expiry are turned off here: log in without expiring=false' }]);
  return max;
}

/** A multipart/form-data body (`curl -F`), read raw, as its text fields. */
const multipartBody: RequestHandler[] = [
  express.raw({ type: 'multipart/form-data', limit: '16kb' }),
  (req, _res, next) => {
    if (Buffer.isBuffer(req.body)) req.body = multipartTextFields(req.body, req.get('content-type') ?? '');
    next();
  },
];

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

function describeSession(session: ApiSession, current: string | undefined): z.input<typeof sessionSchema> {
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
  const { config, sessions, signIn, audit, secondFactors } = deps;

  /** After the password: the account's second factor, from `otp` (401 when missing or wrong); or its absence where the policy requires one (403). */
  async function checkSecondFactor(user: User, otp: string | undefined, ip: string, userAgent: string | null): Promise<void> {
    if (!(await secondFactors.hasFactor(user.id))) {
      if (secondFactors.requiredByPolicy(user)) {
        throw new AppError(403, 'second_factor_required', 'This account must use two-step sign-in: set up an authenticator app in the settings pages (/settings/two-factor), then log in with otp.');
      }
      return;
    }
    if (otp === undefined || otp === '') {
      throw new AppError(401, 'otp_required', 'This account uses two-step sign-in: send otp, the current code of its authenticator app or a recovery code.', { errors: [{ field: 'otp', code: 'required', message: 'otp is required for this account' }] });
    }
    const checked = await secondFactors.check(user, otp, { ip, userAgent, via: 'api' });
    if (checked.status === 'limited') throw AppError.tooManyRequests(checked.retryAfterSeconds, checked.limit);
    if (checked.status === 'failed') {
      throw new AppError(401, 'otp_invalid', 'Login failed: the otp code is wrong, expired or was used already.', { errors: [{ field: 'otp', code: 'invalid', message: 'not the current code of the authenticator app, nor an unused recovery code' }] });
    }
  }
  const router = Router();
  const authenticated = requireApiSession(deps);

  route(router, loginOperation, multipartBody, async (req, res, { params, query, body }) => {
    // The query string is accepted for scripts written for ArchivesSpace; it is discouraged
    // (URLs end up in logs and histories) and docs/http-api.md says so.
    const fields = body ?? {};
    const password = fields.password ?? query.password;
    if (password === undefined || password === '') {
      throw AppError.validation([{ field: 'password', code: 'required', message: 'password is required (form field, JSON field or query parameter)' }]);
    }
    const requested = fields.scope ?? query.scope ?? [];
    const lifetime = nonExpiringSeconds(config, fields.expiring ?? query.expiring);

    const ip = req.ip ?? 'unknown';
    let result;
    try {
      result = await signIn.attempt(params.username, password, { ip, userAgent: req.get('user-agent') ?? null, via: 'api' });
    } catch (error) {
      if (error instanceof HashingBusyError) throw new AppError(503, 'busy', 'The service is busy. Try again shortly.', { headers: { 'Retry-After': '1' } });
      throw error;
    }
    if (result.status === 'limited') throw AppError.tooManyRequests(result.retryAfterSeconds, result.limit);
    if (result.status === 'failed') throw new AppError(401, 'login_failed', LOGIN_FAILED);

    const user = result.user;
    await checkSecondFactor(user, fields.otp ?? query.otp, ip, req.get('user-agent') ?? null);
    const scopes = requested.length ? requested : user.allowedScopes;
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
      details: { session: session.id, via: 'api', scopes: session.scopes, ...(session.expiring ? {} : { expiring: false }) },
    });
    // What was granted: how long it lives unused, until when, and whether use extends it.
    res.set('Cache-Control', 'no-store').json({
      session: token,
      user: { username: user.username, email: user.email, scopes: session.scopes },
      expires_in: Math.round((session.expiresAt.getTime() - session.lastSeenAt.getTime()) / 1000),
      expires_at: session.expiresAt.toISOString(),
      expiring: session.expiring,
    } satisfies z.input<typeof loginAnswer>);
  });
  router.all('/users/:username/login', methodNotAllowed(['POST']));

  route(router, logoutOperation, [authenticated], async (req, res) => {
    const { token, session, user } = req.apiSession!;
    await sessions.endByToken(token);
    await audit.record({ actor: `user:${user.id}`, action: 'session.ended', subject: `user:${user.id}`, ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null, details: { session: session.id, via: 'api' } });
    res.status(204).end();
  });
  router.all('/logout', methodNotAllowed(['POST']));

  route(router, listSessionsOperation, [authenticated], async (req, res) => {
    const { session, user } = req.apiSession!;
    const live = await sessions.listForUser(user.id);
    res.set('Cache-Control', 'no-store').json({ sessions: live.map((s) => describeSession(s, session.id)) });
  });
  router.all('/api/v1/sessions', methodNotAllowed(['GET']));

  route(router, endSessionOperation, [authenticated], async (req, res, { params }) => {
    const { user } = req.apiSession!;
    const ended = await sessions.end(user.id, params.id);
    if (!ended) throw AppError.notFound('No such live session of yours.');
    await audit.record({ actor: `user:${user.id}`, action: 'session.ended', subject: `user:${user.id}`, ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null, details: { session: params.id, via: 'api' } });
    res.status(204).end();
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
