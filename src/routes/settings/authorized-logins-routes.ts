import { Router, type Request } from 'express';
import { z } from 'zod';
import type { AuditLog } from '../../audit/audit-log.ts';
import { ADMIN_SCOPE } from '../../config/admin-scope.ts';
import { CLIENT_KINDS } from '../../config/schema.ts';
import { defineOperation, route } from '../../http/api-operation.ts';
import { errorResponse, LIMITED_API_FAILURES, UNAUTHENTICATED } from '../../http/common-responses.ts';
import { sendPage } from '../../http/pages.ts';
import { methodNotAllowed } from '../../http/refusals.ts';
import type { AuthorizedLogin, AuthorizedLogins } from '../../oauth/authorized-logins.ts';
import type { ApiSessionStore } from '../../sessions/api-session-store.ts';
import { AppError } from '../../shared/errors.ts';
import type { CallerAuthenticator } from './caller.ts';
import { authorizedLoginsPage, LOGIN_NOTICES } from './authorized-logins-pages.ts';

export interface AuthorizedLoginRouteDependencies {
  logins: AuthorizedLogins;
  sessions: ApiSessionStore;
  audit: AuditLog;
  callers: CallerAuthenticator;
}

const loginSchema = z.object({
  id: z.string().meta({ description: 'Names the login in this API (not a token, not the grant id).' }),
  client_id: z.string(),
  client_name: z.string(),
  client_kind: z.enum(CLIENT_KINDS).nullable().meta({ description: 'Null when the client has been deleted.' }),
  scopes: z.array(z.string()),
  approved_at: z.iso.datetime().nullable(),
  expires_at: z.iso.datetime().nullable(),
  last_used_at: z.iso.datetime().nullable().meta({ description: 'When a token was last issued under the login (its approval, a refresh).' }),
});

const TAG = 'Authorized logins';
const FAILURES = {
  401: UNAUTHENTICATED,
  403: errorResponse('A personal access token cannot manage logins; or a cookie-authenticated change without its CSRF token.'),
  ...LIMITED_API_FAILURES,
};

export const listLoginsOperation = defineOperation({
  method: 'get',
  path: '/api/v1/logins',
  operationId: 'listAuthorizedLogins',
  summary: 'The device, command-line and web-application logins the caller approved',
  tag: TAG,
  credentials: ['apiSession', 'browserSession'],
  responses: { 200: { description: 'The live logins, newest first.', body: z.object({ logins: z.array(loginSchema) }) }, ...FAILURES },
});

export const revokeLoginOperation = defineOperation({
  method: 'delete',
  path: '/api/v1/logins/:id',
  operationId: 'revokeAuthorizedLogin',
  summary: 'Revoke a login: its refresh and access tokens stop working at once, on every node',
  tag: TAG,
  credentials: ['apiSession', 'browserSession'],
  params: z.object({ id: z.string().meta({ description: "The login's id (from the list)." }) }),
  responses: { 204: { description: 'Revoked.' }, 404: errorResponse('No such live login of yours.'), ...FAILURES },
});

function describe(login: AuthorizedLogin): z.input<typeof loginSchema> {
  return {
    id: login.handle,
    client_id: login.clientId,
    client_name: login.clientName,
    client_kind: login.clientKind,
    scopes: login.scopes,
    approved_at: login.approvedAt?.toISOString() ?? null,
    expires_at: login.expiresAt?.toISOString() ?? null,
    last_used_at: login.lastUsedAt?.toISOString() ?? null,
  };
}

/** The "Authorized logins" settings page (apps, devices and sessions), and its JSON API. */
export function createAuthorizedLoginRoutes({ logins, sessions, audit, callers }: AuthorizedLoginRouteDependencies): Router {
  const router = Router();
  const page = callers.requireLoginSession('page');
  const api = callers.requireLoginSession('api');
  const actor = (req: Request) => ({ actor: `user:${req.caller!.user.id}`, ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });
  const viewer = (req: Request) => ({ username: req.caller!.user.username, csrf: callers.csrfFor(req.caller!.sessionId!), admin: req.caller!.scopes.includes(ADMIN_SCOPE) });

  router.get('/settings/logins', page, async (req, res, next) => {
    try {
      const userId = req.caller!.user.id;
      const [found, live, signIns] = await Promise.all([logins.list(userId), sessions.listForUser(userId), logins.listSignIns(userId)]);
      const done = typeof req.query.done === 'string' && req.query.done in LOGIN_NOTICES ? (req.query.done as keyof typeof LOGIN_NOTICES) : undefined;
      sendPage(res, 200, authorizedLoginsPage({ ...viewer(req), logins: found, sessions: live, signIns, currentSessionId: req.caller!.sessionId, ...(done ? { notice: done } : {}) }));
    } catch (error) {
      next(error);
    }
  });

  // Post/Redirect/Get: a reload shows the list again and revokes nothing twice.
  router.post('/settings/logins/:handle/revoke', page, async (req, res, next) => {
    try {
      await logins.revoke(req.caller!.user.id, String(req.params.handle), actor(req));
      res.redirect(303, '/settings/logins?done=login');
    } catch (error) {
      next(error);
    }
  });

  router.post('/settings/sessions/:id/end', page, async (req, res, next) => {
    try {
      const { user, sessionId } = req.caller!;
      const id = String(req.params.id);
      if (!(await sessions.end(user.id, id))) throw AppError.notFound('No such live session of yours.');
      await audit.record({ ...actor(req), action: 'session.ended', subject: `user:${user.id}`, details: { session: id, via: 'settings' } });
      res.redirect(303, id === sessionId ? '/login' : '/settings/logins?done=session');
    } catch (error) {
      next(error);
    }
  });

  router.post('/settings/signins/:handle/end', page, async (req, res, next) => {
    try {
      await logins.endSignIn(req.caller!.user.id, String(req.params.handle), actor(req));
      res.redirect(303, '/settings/logins?done=signin');
    } catch (error) {
      next(error);
    }
  });

  route(router, listLoginsOperation, [api], async (req, res) => {
    res.set('Cache-Control', 'no-store').json({ logins: (await logins.list(req.caller!.user.id)).map(describe) });
  });
  router.all('/api/v1/logins', methodNotAllowed(['GET']));

  route(router, revokeLoginOperation, [api], async (req, res, { params }) => {
    await logins.revoke(req.caller!.user.id, params.id, actor(req));
    res.status(204).end();
  });
  router.all('/api/v1/logins/:id', methodNotAllowed(['DELETE']));

  return router;
}
