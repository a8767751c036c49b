import { Router, type Request } from 'express';
import type { Config } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import { methodNotAllowed } from '../http/refusals.ts';
import type { CredentialVerifier } from '../introspection/credential-verifier.ts';
import { bearerToken } from '../credentials/bearer.ts';

/** The credential of the request a gateway forwards (nginx auth_request, Traefik ForwardAuth). */
function forwardedCredential(req: Request, config: Config): { token: string; apiUser?: string } | undefined {
  const apiKey = req.headers[config.tokens.apiKeyHeader];
  if (typeof apiKey === 'string' && apiKey.trim()) {
    const user = req.headers[config.tokens.apiUserHeader];
    return { token: apiKey.trim(), apiUser: typeof user === 'string' ? user.trim() : '' };
  }
  const bearer = bearerToken(req.headers.authorization);
  if (bearer) return { token: bearer };
  for (const name of ['x-session', ...config.sessions.headerAliases]) {
    const value = req.headers[name];
    if (typeof value === 'string' && value.trim()) return { token: value.trim() };
  }
  for (const name of ['x-original-uri', 'x-forwarded-uri']) {
    const uri = req.headers[name];
    if (typeof uri !== 'string') continue;
    const token = new URL(uri, 'http://gateway.invalid').searchParams.get('access_token');
    if (token) return { token };
  }
  return undefined;
}

function requiredScopes(req: Request): string[] {
  const raw = req.query.scope;
  const values = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? [raw] : [];
  return values.flatMap((v) => v.split(/[\s,]+/)).filter(Boolean);
}

/**
 * GET /auth/verify: 200 with X-Auth-Subject, X-Auth-Username, X-Auth-Scope and X-Auth-Client-Id
 * when the forwarded request carries an active credential holding every `?scope=`; 401 without
 * one (with WWW-Authenticate, RFC 6750), 403 when a scope is missing.
 */
export function createForwardAuthRoutes({ config, verifier, findUserByLogin }: { config: Config; verifier: CredentialVerifier; findUserByLogin: (login: string) => Promise<{ id: string } | null> }): Router {
  const router = Router();
  router.get('/auth/verify', async (req, res, next) => {
    try {
      res.set('Cache-Control', 'no-store');
      const presented = forwardedCredential(req, config);
      const active = presented ? await verifier.verify(presented.token, { ip: req.ip ?? null }) : null;
      let valid = active;
      if (active && presented?.apiUser !== undefined) {
        // The API-key pair: the named user must be the token's owner, and only personal tokens go there.
        const named = presented.apiUser ? await findUserByLogin(presented.apiUser) : null;
        if (active.kind !== 'personal_access_token' || named?.id !== active.sub) valid = null;
      }
      if (!valid) {
        throw AppError.unauthorized(
          presented ? 'The credential is invalid, expired or revoked.' : 'Authentication required.',
          { 'WWW-Authenticate': presented ? 'Bearer realm="tessera", error="invalid_token"' : 'Bearer realm="tessera"' },
        );
      }
      const required = requiredScopes(req);
      const missing = required.filter((scope) => !valid.scopes.includes(scope));
      if (missing.length) {
        throw new AppError(403, 'insufficient_scope', `This requires the scope ${missing.join(' ')}.`, {
          headers: { 'WWW-Authenticate': `Bearer realm="tessera", error="insufficient_scope", scope="${required.join(' ')}"` },
        });
      }
      res
        .set('X-Auth-Subject', valid.sub)
        .set('X-Auth-Username', valid.username ?? '')
        .set('X-Auth-Scope', valid.scopes.join(' '))
        .set('X-Auth-Client-Id', valid.clientId ?? '')
        .set('X-Auth-Credential', valid.kind)
        .status(200)
        .json({ sub: valid.sub, username: valid.username, scope: valid.scopes.join(' '), client_id: valid.clientId, token_type: valid.kind });
    } catch (error) {
      next(error);
    }
  });
  router.all('/auth/verify', methodNotAllowed(['GET']));
  return router;
}
