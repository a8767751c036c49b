import { Router, type Request } from 'express';
import type { Config } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import { methodNotAllowed } from '../http/refusals.ts';
import type { CredentialVerifier } from '../introspection/credential-verifier.ts';
import type { FailedLookupLimiter } from '../introspection/failed-lookup-limiter.ts';
import { configuredSources, presentedCredential } from '../credentials/presented-credential.ts';
import { isPromise } from '../shared/awaitable.ts';
import type { Logger } from 'pino';

/** RFC 6749 §3.3: the characters a scope may hold (also all that may go into WWW-Authenticate's scope). */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

function requiredScopes(req: Request): string[] {
  const raw = req.query.scope;
  const values = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? [raw] : [];
  const scopes = values.flatMap((v) => v.split(/[\s,]+/)).filter(Boolean);
  if (!scopes.every((scope) => SCOPE_TOKEN.test(scope))) throw AppError.badRequest('The scope parameter holds a character no scope has.');
  return scopes;
}

export interface ForwardAuthDependencies {
  config: Config;
  logger: Logger;
  verifier: CredentialVerifier;
  findUserByLogin: (login: string) => Promise<{ id: string } | null>;
  /** Failed personal-token lookups, per client address (req.ip: the original client behind a trusted gateway). */
  failedLookups: FailedLookupLimiter;
}

/**
 * GET /auth/verify: 200 with X-Auth-Subject, X-Auth-Username, X-Auth-Scope and X-Auth-Client-Id
 * when the forwarded request carries an active credential holding every `?scope=`; 401 without
 * one (with WWW-Authenticate, RFC 6750), 403 when a scope is missing, 429 for a personal token from
 * an address whose personal-token lookups keep finding nothing.
 */
export function createForwardAuthRoutes({ config, logger, verifier, findUserByLogin, failedLookups }: ForwardAuthDependencies): Router {
  const router = Router();
  // The forwarded request's credential; its query is the one in X-Original-URI or X-Forwarded-URI.
  const sources = configuredSources(config, { apiKey: true, bearer: 'any', query: 'forwarded' });
  router.get('/auth/verify', async (req, res, next) => {
    try {
      res.set('Cache-Control', 'no-store');
      const presented = presentedCredential(req, sources);
      // Personal-token guessing (docs/resource-servers.md#limits-on-guessing): the source is the
      // client address as the trusted gateway forwards it. Refused with 429, never called invalid.
      const source = req.ip ?? '';
      const waitMs = presented ? failedLookups.personalTokenWaitMs(source, presented.token) : 0;
      if (waitMs > 0) {
        throw new AppError(429, 'rate_limited', 'Too many personal-token lookups from this address found nothing. Try again later.', { headers: failedLookups.refusalHeaders(waitMs) });
      }
      const lookup = presented ? verifier.verify(presented.token, { ip: req.ip ?? null }) : null;
      const active = isPromise(lookup) ? await lookup : lookup;
      // Only a lookup in the stores counts (an answer from memory costs nothing).
      if (isPromise(lookup) && active === null && failedLookups.personalTokenMissed(source, presented!.token)) {
        logger.warn({ ip: source }, 'an address is limited at /auth/verify: too many personal-token lookups found nothing');
      }
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
        .json({ sub: valid.sub, username: valid.username, scope: valid.scopes.join(' '), client_id: valid.clientId, credential_kind: valid.kind });
    } catch (error) {
      next(error);
    }
  });
  router.all('/auth/verify', methodNotAllowed(['GET']));
  return router;
}
