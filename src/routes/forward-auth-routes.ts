import { Router } from 'express';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import { methodNotAllowed } from '../http/refusals.ts';
import { defineOperation, route } from '../http/api-operation.ts';
import { errorResponse, RATE_LIMIT_HEADERS, SERVER_FAILURES, UNAUTHENTICATED } from '../http/common-responses.ts';
import type { CredentialVerifier } from '../introspection/credential-verifier.ts';
import type { FailedLookupLimiter } from '../introspection/failed-lookup-limiter.ts';
import { configuredSources, presentedCredential } from '../credentials/presented-credential.ts';
import { isPromise } from '../shared/awaitable.ts';
import { dpopAuthorizationToken, forwardedRequest, SenderConstraintRefusal, type SenderConstraintCheck } from '../introspection/sender-constraint.ts';
import type { Logger } from 'pino';
import { allowsPath, capabilitiesFor, parseRequestPath, parseScopePath } from '../shared/path-scopes.ts';

/** RFC 6749 §3.3: the characters a scope may hold (also all that may go into WWW-Authenticate's scope). */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** `?scope=`, once or more, each separated by spaces or commas. */
const verifyQuery = z.object({
  scope: z
    .union([z.string(), z.array(z.string())], { error: 'must be a scope list' })
    .optional()
    .meta({ description: 'Scopes the credential must hold, separated by spaces or commas (the parameter may repeat).' }),
  path_scope: z
    .union([z.string(), z.array(z.string())], { error: 'must be a scope list' })
    .optional()
    .meta({ description: 'Path-scoped scopes that must each cover the forwarded request\'s path (`X-Original-URI`, then `X-Forwarded-Uri`): `deposit:write` is met by `deposit:write:/records/123` for /records/123/files, never for /records/1234.' }),
  capability: z
    .enum(['wlcg', 'scitokens'])
    .optional()
    .meta({ description: 'The forwarded request needs the capability its method maps to (`X-Original-Method`, then `X-Forwarded-Method`) on its path: WLCG storage.read / storage.create / storage.modify, SciTokens read / write.' }),
  strip_prefix: z
    .string()
    .regex(/^\/[\x21\x23-\x7e]*$/, { message: 'must be a path starting with "/"' })
    .optional()
    .meta({ description: 'A prefix of the forwarded path the scopes do not name (a gateway\'s location, e.g. /storage): removed before the path is compared.' }),
});

function requiredScopes(raw: z.output<typeof verifyQuery>['scope']): string[] {
  const values = raw === undefined ? [] : [raw].flat();
  const scopes = values.flatMap((v) => v.split(/[\s,]+/)).filter(Boolean);
  if (!scopes.every((scope) => SCOPE_TOKEN.test(scope))) throw AppError.badRequest('The scope parameter holds a character no scope has.');
  return scopes;
}

const verifiedSchema = z.object({
  sub: z.string(),
  username: z.string().nullable(),
  scope: z.string().meta({ description: 'The credential\'s scopes, separated by spaces.' }),
  client_id: z.string().nullable(),
  credential_kind: z.enum(['access_token', 'personal_access_token', 'session']),
});

export const verifyOperation = defineOperation({
  method: 'get',
  path: '/auth/verify',
  operationId: 'forwardAuth',
  summary: 'Forward-auth for gateways: is the forwarded request\'s credential active, with these scopes?',
  description:
    'For nginx `auth_request` and Traefik ForwardAuth (docs/resource-servers.md#forward-auth-for-gateways). ' +
    'The credential may also be `?access_token=` of the forwarded URL (`X-Original-URI`, then `X-Forwarded-Uri`). ' +
    'A DPoP-bound token comes as `Authorization: DPoP` with its `DPoP` proof, checked against the forwarded request ' +
    '(`X-Original-Method` or `X-Forwarded-Method`, `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Original-URI` or `X-Forwarded-Uri`); as a bearer token it is refused. ' +
    'The answer\'s headers are what a gateway passes on.',
  tag: 'Forward-auth',
  credentials: ['accessToken', 'personalToken', 'apiSession'],
  query: verifyQuery,
  responses: {
    200: {
      description: 'Active, holding every scope asked for.',
      body: verifiedSchema,
      headers: { 'X-Auth-Subject': 'The user (or client) id.', 'X-Auth-Username': 'Empty for a client.', 'X-Auth-Scope': 'The scopes, separated by spaces.', 'X-Auth-Client-Id': 'Empty but for OAuth tokens.', 'X-Auth-Credential': 'The credential\'s kind.' },
    },
    400: errorResponse('The scope parameter holds a character no scope has, or a path check has no forwarded path or method.'),
    401: UNAUTHENTICATED,
    403: errorResponse('A scope asked for is missing (`WWW-Authenticate` with `error="insufficient_scope"`).', { 'WWW-Authenticate': 'The Bearer challenge, naming the scopes required.' }),
    ...SERVER_FAILURES,
    429: errorResponse('Too many personal-token lookups from this address found nothing (docs/resource-servers.md#limits-on-guessing).', RATE_LIMIT_HEADERS),
  },
});

export interface ForwardAuthDependencies {
  config: Config;
  logger: Logger;
  verifier: CredentialVerifier;
  /** DPoP-bound tokens: their proof for the forwarded request (sender-constraint.ts). */
  senderConstraint: SenderConstraintCheck;
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
export function createForwardAuthRoutes({ config, logger, verifier, senderConstraint, findUserByLogin, failedLookups }: ForwardAuthDependencies): Router {
  const router = Router();
  // The forwarded request's credential; its query is the one in X-Original-URI or X-Forwarded-URI.
  const sources = configuredSources(config, { apiKey: true, bearer: 'any', query: 'forwarded' });
  route(router, verifyOperation, [], async (req, res, { query }) => {
    res.set('Cache-Control', 'no-store');
    // `Authorization: DPoP` (RFC 9449 §7.1): a bound token, its proof checked against the forwarded request.
    const dpopToken = dpopAuthorizationToken(req.headers.authorization);
    const presented = dpopToken ? { token: dpopToken, source: 'authorization' as const, apiUser: undefined } : presentedCredential(req, sources);
    // Personal-token guessing (docs/resource-servers.md#limits-on-guessing): the source is the
    // client address as the trusted gateway forwards it. Refused with 429, never called invalid.
    const source = req.ip ?? '';
    const waitMs = presented ? failedLookups.personalTokenWaitMs(source, presented.token) : 0;
    if (waitMs > 0) {
      throw new AppError(429, 'rate_limited', 'Too many personal-token lookups from this address found nothing. Try again later.', { headers: failedLookups.refusalHeaders(waitMs) });
    }
    const lookup = presented ? verifier.verify(presented.token, { ip: req.ip ?? null, senderConstrained: true }) : null;
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
    if (valid && (valid.jkt !== undefined || dpopToken)) {
      // Only here is anything more asked of the store (the proof's jti); an unbound token under Bearer passes untouched.
      const forwarded = forwardedRequest(req.headers);
      try {
        await senderConstraint(valid, { token: presented!.token, scheme: dpopToken ? 'dpop' : 'bearer', method: forwarded.method, url: forwarded.url, headers: req.headers });
      } catch (error) {
        if (!(error instanceof SenderConstraintRefusal)) throw error;
        throw new AppError(401, error.error, error.message, { headers: error.headers });
      }
    }
    if (!valid) {
      throw AppError.unauthorized(
        presented ? 'The credential is invalid, expired or revoked.' : 'Authentication required.',
        { 'WWW-Authenticate': presented ? `${dpopToken ? 'DPoP' : 'Bearer realm="tessera",'} error="invalid_token"` : 'Bearer realm="tessera"' },
      );
    }
    const pathCheck = forwardedPathCheck(req.headers, query);
    if (pathCheck) {
      const { all, anyOf, path } = pathCheck;
      // Each path_scope must cover the path; of a capability's scopes, one is enough. A path
      // outside strip_prefix is covered by nothing.
      const covers = (name: string) => path !== null && allowsPath(valid.scopes, name, path);
      if (!all.every(covers) || (anyOf.length > 0 && !anyOf.some(covers))) {
        const names = [...all, ...anyOf];
        const shown = parseRequestPath(path ?? '');
        const nameable = shown.ok && shown.path !== '/' && parseScopePath(shown.path).ok;
        const scope = names.map((name) => (nameable ? `${name}:${(shown as { path: string }).path}` : name)).join(' ');
        const wanted = [...all, ...(anyOf.length ? [anyOf.join(' or ')] : [])].join(' and ');
        throw new AppError(403, 'insufficient_scope', `This requires the scope ${wanted} for ${shown.ok ? shown.path : 'a well-formed path'}.`, {
          headers: { 'WWW-Authenticate': `Bearer realm="tessera", error="insufficient_scope", scope="${scope}"` },
        });
      }
    }
    const required = requiredScopes(query.scope);
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
      .json({ sub: valid.sub, username: valid.username, scope: valid.scopes.join(' '), client_id: valid.clientId, credential_kind: valid.kind as z.input<typeof verifiedSchema>['credential_kind'] }); // (refresh tokens are not looked for here)
  });
  router.all('/auth/verify', methodNotAllowed(['GET']));
  return router;
}

/** The first of these headers the gateway set. */
function forwardedHeader(headers: Record<string, string | string[] | undefined>, names: string[]): string | undefined {
  for (const name of names) {
    const value = headers[name];
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}

/**
 * What `path_scope` and `capability` ask of the forwarded request: the path-scoped names, and the
 * path they must cover (the forwarded URI's path, without `strip_prefix`). Null when neither is asked.
 */
function forwardedPathCheck(headers: Record<string, string | string[] | undefined>, query: z.output<typeof verifyQuery>): { all: string[]; anyOf: string[]; path: string | null } | null {
  const named = requiredScopes(query.path_scope);
  if (named.length === 0 && !query.capability) return null;
  const uri = forwardedHeader(headers, ['x-original-uri', 'x-forwarded-uri']);
  if (uri === undefined) throw AppError.badRequest('A path check needs the forwarded request\'s URI: have the gateway send X-Original-URI or X-Forwarded-Uri.');
  let path: string | null = uri.split(/[?#]/, 1)[0]!;
  if (query.strip_prefix !== undefined && query.strip_prefix !== '/') {
    const prefix = query.strip_prefix.replace(/\/$/, '');
    // Only a whole segment is a prefix: /storage strips /storage/x, never /storagex.
    path = path === prefix ? '/' : path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : null;
  }
  let anyOf: string[] = [];
  if (query.capability) {
    const method = forwardedHeader(headers, ['x-original-method', 'x-forwarded-method']);
    if (method === undefined) throw AppError.badRequest('A capability check needs the forwarded request\'s method: have the gateway send X-Original-Method or X-Forwarded-Method.');
    anyOf = capabilitiesFor(query.capability, method);
  }
  return { all: named, anyOf, path };
}
