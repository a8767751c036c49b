import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { CredentialVerifier } from '../../introspection/credential-verifier.ts';
import { dpopAuthorizationToken, SenderConstraintRefusal, type SenderConstraintCheck, type TokenScheme } from '../../introspection/sender-constraint.ts';
import { OIDC_ROUTES } from '../../oauth/provider/provider.ts';
import { oauthNotAllowedError } from '../../http/refusals.ts';
import { OAuthError } from '../../shared/errors.ts';

// OpenID Connect's UserInfo endpoint (Core §5.3), answered by Tessera: oidc-provider's refuses every
// access token Tessera issues, since each is issued for a resource server (an audience) and carries
// that server's scopes, not `openid`. Here an access token of a person's login answers, when the
// login was granted `openid`, with the claims the ID token carries (the `openid` scope's: sub and
// preferred_username). Errors as oidc-provider words them, with RFC 6750's challenge.

export interface UserinfoDependencies {
  verifier: CredentialVerifier;
  /** DPoP-bound access tokens: their proof (sender-constraint.ts). */
  senderConstraint: SenderConstraintCheck;
  /** The OpenID scopes a grant holds (`openid` among them when the login asked for it), or undefined when it is gone. */
  grantOpenIdScopes: (grantId: string) => Promise<string[] | undefined>;
}

const CHALLENGE = 'Bearer realm="tessera"';
const NO_TOKEN = new OAuthError(400, 'invalid_request', 'no access token provided', { headers: { 'WWW-Authenticate': `${CHALLENGE}, error="invalid_request"` } });
const TWO_TOKENS = new OAuthError(400, 'invalid_request', 'access token must only be provided using one mechanism', { headers: { 'WWW-Authenticate': `${CHALLENGE}, error="invalid_request"` } });
const INVALID_TOKEN = new OAuthError(401, 'invalid_token', 'invalid token provided', { headers: { 'WWW-Authenticate': `${CHALLENGE}, error="invalid_token"` } });
const INVALID_DPOP_TOKEN = new OAuthError(401, 'invalid_token', 'invalid token provided', { headers: { 'WWW-Authenticate': 'DPoP error="invalid_token"' } });
const NO_OPENID = new OAuthError(403, 'insufficient_scope', 'access token missing openid scope', { headers: { 'WWW-Authenticate': `${CHALLENGE}, error="insufficient_scope", scope="openid"` } });
const UNREADABLE_BODY = new OAuthError(400, 'invalid_request', 'the request body could not be read');
const BEARER = /^Bearer +([\x21-\x7e]+)$/i;

/**
 * The access token of a request: `Authorization: Bearer` (RFC 6750 §2.1), `Authorization: DPoP`
 * (RFC 9449 §7.1) or a form's access_token (§2.2), never two of them.
 */
function presentedToken(req: Request): { token: string; scheme: TokenScheme } {
  const header = req.get('authorization');
  const dpop = dpopAuthorizationToken(header);
  const fromHeader = header === undefined ? undefined : (dpop ?? BEARER.exec(header)?.[1]);
  if (header !== undefined && fromHeader === undefined) throw INVALID_TOKEN;
  const body = (req.body ?? {}) as Record<string, unknown>;
  const fromBody = req.method === 'POST' && req.is('application/x-www-form-urlencoded') ? body.access_token : undefined;
  if (Array.isArray(fromBody) || (fromHeader !== undefined && fromBody !== undefined)) throw TWO_TOKENS;
  const token = fromHeader ?? fromBody;
  if (typeof token !== 'string' || token === '') throw NO_TOKEN;
  return { token, scheme: dpop ? 'dpop' : 'bearer' };
}

export function createUserinfoRoutes(deps: UserinfoDependencies): Router {
  const router = Router({ strict: true, caseSensitive: true });
  // Read here, ahead of the app's parsers: a form it cannot read is refused in the OAuth shape.
  const form = express.urlencoded({ extended: false, limit: '10kb' });
  const readForm = (req: Request, res: Response, next: NextFunction) => form(req, res, (error?: unknown) => next(error ? UNREADABLE_BODY : undefined));

  const answer = async (req: Request, res: Response, next: NextFunction) => {
    try {
      res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
      const presented = presentedToken(req);
      const active = await deps.verifier.verify(presented.token, { ip: req.ip ?? null, senderConstrained: true });
      if (active?.kind !== 'access_token' || active.username === null) throw presented.scheme === 'dpop' ? INVALID_DPOP_TOKEN : INVALID_TOKEN;
      try {
        await deps.senderConstraint(active, { ...presented, method: req.method, url: `${req.protocol}://${req.get('host')}${req.originalUrl}`, headers: req.headers });
      } catch (error) {
        if (!(error instanceof SenderConstraintRefusal)) throw error;
        throw new OAuthError(401, error.error, error.message, { headers: error.headers });
      }
      const openIdScopes = active.grantId ? await deps.grantOpenIdScopes(active.grantId) : undefined;
      if (!openIdScopes?.includes('openid')) throw NO_OPENID;
      res.json({ sub: active.sub, preferred_username: active.username });
    } catch (error) {
      next(error);
    }
  };
  router.get(OIDC_ROUTES.userinfo, answer);
  router.post(OIDC_ROUTES.userinfo, readForm, answer);
  router.all(OIDC_ROUTES.userinfo, (req, _res, next) => next(oauthNotAllowedError(req.method, ['GET', 'HEAD', 'POST'])));
  return router;
}
