import { Router, type Request } from 'express';
import { z } from 'zod';
import { AppError } from '../shared/errors.ts';
import { methodNotAllowed, requireJsonBody } from '../http/refusals.ts';
import { inApiFieldNames } from '../http/api-field-names.ts';
import { defineOperation, route } from '../http/api-operation.ts';
import { errorResponse, LIMITED_API_FAILURES, NOT_JSON, TOO_LARGE, UNAUTHENTICATED, VALIDATION_FAILED } from '../http/common-responses.ts';
import type { User } from '../accounts/user.ts';
import type { CredentialVerifier } from '../introspection/credential-verifier.ts';
import { dpopAuthorizationToken, SenderConstraintRefusal, type SenderConstraintCheck } from '../introspection/sender-constraint.ts';
import type { CallerAuthenticator } from './settings/caller.ts';
import type { PersonalToken, PersonalTokenService } from '../personal-tokens/personal-token-service.ts';
import { presentedCredential, type CredentialSources } from '../credentials/presented-credential.ts';

const tokenId = z.object({ id: z.string().meta({ description: "The token's id (from the list or the answer that created it)." }) });

/** A personal token as the API describes it; never its value (but in the answer that creates it). */
const personalTokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  hint: z.string().meta({ description: 'The prefix and first characters of the value (`tsr_pat_Ab3x`), to recognise it.' }),
  created_at: z.iso.datetime(),
  expires_at: z.iso.datetime().nullable().meta({ description: 'Null: it never expires.' }),
  last_used_at: z.iso.datetime().nullable().meta({ description: 'Written at most once a minute.' }),
  last_used_ip: z.string().nullable(),
  revoked: z.boolean(),
  expired: z.boolean(),
});
const newTokenSchema = personalTokenSchema.extend({ token: z.string().meta({ description: 'The value, `tsr_pat_…`: shown only in this answer.' }) });

const createBody = z.object({
  name: z.string().meta({ description: '1–100 characters, trimmed; no control characters.' }),
  scopes: z.array(z.string()).optional().meta({ description: "Among the account's allowed scopes; `[\"read\"]` by default." }),
  expires_in_days: z.number().int().positive().nullable().optional().meta({ description: 'Whole days up to `TESSERA_TOKEN_MAX_EXPIRY_DAYS`; null for no expiry where `tokens.allowNoExpiry` allows it.' }),
});

const meSchema = z.object({
  sub: z.string().meta({ description: "The user's id (a client's id for a client-credentials token)." }),
  username: z.string().nullable(),
  email: z.string().nullable(),
  scopes: z.array(z.string()),
  credential: z.enum(['session', 'personal_access_token', 'access_token']),
  client_id: z.string().nullable().optional().meta({ description: 'An OAuth access token only: the client it was issued to.' }),
  exp: z.number().int().nullable().optional().meta({ description: 'An OAuth access token only: when it expires (seconds since the epoch).' }),
});

const TAG = 'Personal access tokens';
/** The refusals of every token-management operation. */
const MANAGE_FAILURES = {
  401: UNAUTHENTICATED,
  403: errorResponse('A personal access token cannot manage tokens; or a cookie-authenticated change without its CSRF token.'),
  ...LIMITED_API_FAILURES,
};
const CREATED_HEADERS = { Location: "The token's URL." };

export const listTokensOperation = defineOperation({
  method: 'get',
  path: '/api/v1/tokens',
  operationId: 'listPersonalTokens',
  summary: "The caller's personal access tokens (never their values)",
  tag: TAG,
  credentials: ['apiSession', 'browserSession'],
  responses: { 200: { description: 'The tokens, newest first.', body: z.object({ tokens: z.array(personalTokenSchema) }) }, ...MANAGE_FAILURES },
});

export const createTokenOperation = defineOperation({
  method: 'post',
  path: '/api/v1/tokens',
  operationId: 'createPersonalToken',
  summary: 'Create a personal access token; its value is answered once',
  tag: TAG,
  credentials: ['apiSession', 'browserSession'],
  body: { schema: createBody, required: true },
  responses: {
    201: { description: 'Created: the value is in `token`, and only here.', body: newTokenSchema, headers: CREATED_HEADERS },
    400: VALIDATION_FAILED,
    413: TOO_LARGE,
    415: NOT_JSON,
    ...MANAGE_FAILURES,
  },
});

export const revokeTokenOperation = defineOperation({
  method: 'delete',
  path: '/api/v1/tokens/:id',
  operationId: 'revokePersonalToken',
  summary: 'Revoke a personal access token (it stops working at once)',
  tag: TAG,
  credentials: ['apiSession', 'browserSession'],
  params: tokenId,
  responses: { 204: { description: 'Revoked.' }, 404: errorResponse('No such active token of yours.'), ...MANAGE_FAILURES },
});

export const rotateTokenOperation = defineOperation({
  method: 'post',
  path: '/api/v1/tokens/:id/rotate',
  operationId: 'rotatePersonalToken',
  summary: 'Replace a token by a new one with the same name, scopes and lifetime; the old one is revoked',
  tag: TAG,
  credentials: ['apiSession', 'browserSession'],
  params: tokenId,
  responses: {
    201: { description: 'The new token: its value is in `token`, and only here.', body: newTokenSchema, headers: CREATED_HEADERS },
    404: errorResponse('No such active token of yours.'),
    409: errorResponse("None of the token's scopes is among the account's allowed scopes any more."),
    ...MANAGE_FAILURES,
  },
});

export const meOperation = defineOperation({
  method: 'get',
  path: '/api/v1/me',
  operationId: 'whoAmI',
  summary: 'Who the presented credential is',
  description: 'Any credential Tessera issues: an API session token, the browser session, a personal access token, or an OAuth access token (`tessera login`), which adds `client_id` and `exp`.',
  tag: 'Identity',
  credentials: ['apiSession', 'browserSession', 'personalToken', 'accessToken', 'queryToken'],
  responses: { 200: { description: 'The caller.', body: meSchema }, 401: UNAUTHENTICATED, ...LIMITED_API_FAILURES },
});

function describe(token: PersonalToken): z.input<typeof personalTokenSchema> {
  return {
    id: token.id,
    name: token.name,
    scopes: token.scopes,
    hint: token.hint,
    created_at: token.createdAt.toISOString(),
    expires_at: token.expiresAt?.toISOString() ?? null,
    last_used_at: token.lastUsedAt?.toISOString() ?? null,
    last_used_ip: token.lastUsedIp,
    revoked: token.revoked,
    expired: token.expired,
  };
}

/**
 * The JSON API for scripts: list, create (the value is answered once), revoke and rotate personal
 * access tokens; and /api/v1/me, which any credential may call to see who it is.
 */
export interface PersonalTokenRouteDependencies {
  personalTokens: PersonalTokenService;
  callers: CallerAuthenticator;
  /** For /api/v1/me with an OAuth access token (the callers know sessions and personal tokens). */
  verifier: CredentialVerifier;
  /** DPoP-bound access tokens at /api/v1/me: their proof (sender-constraint.ts). */
  senderConstraint: SenderConstraintCheck;
  findUserById: (id: string) => Promise<User | null>;
}


/** Where /api/v1/me looks for an OAuth access token once the callers found no session or personal token. */
const BEARER_ONLY: CredentialSources = { bearer: 'any', sessionHeaders: [] };

/** The service's names of the fields it checks, as this API's clients send them. */
const API_FIELD_NAMES: Readonly<Record<string, string>> = { expiresInDays: 'expires_in_days' };

export function createPersonalTokenRoutes({ personalTokens, callers, verifier, senderConstraint, findUserById }: PersonalTokenRouteDependencies): Router {
  const router = Router();
  const manage = callers.requireLoginSession('api');
  const actor = (req: Request) => ({ actor: `user:${req.caller!.user.id}`, ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });

  route(router, listTokensOperation, [manage], async (req, res) => {
    const tokens = (await personalTokens.list(req.caller!.user.id)).map(describe);
    res.set('Cache-Control', 'no-store').json({ tokens });
  });

  route(router, createTokenOperation, [requireJsonBody(), manage], async (req, res, { body }) => {
    try {
      const { token, record } = await personalTokens.create(req.caller!.user, { name: body.name, scopes: body.scopes ?? null, ...(body.expires_in_days !== undefined ? { expiresInDays: body.expires_in_days } : {}) }, actor(req));
      res.status(201).set('Cache-Control', 'no-store').location(`/api/v1/tokens/${record.id}`).json({ ...describe(record), token } satisfies z.input<typeof newTokenSchema>);
    } catch (error) {
      throw inApiFieldNames(error, API_FIELD_NAMES);
    }
  });
  router.all('/api/v1/tokens', methodNotAllowed(['GET', 'POST']));

  route(router, revokeTokenOperation, [manage], async (req, res, { params }) => {
    await personalTokens.revoke(req.caller!.user.id, params.id, actor(req));
    res.status(204).end();
  });
  router.all('/api/v1/tokens/:id', methodNotAllowed(['DELETE']));

  route(router, rotateTokenOperation, [manage], async (req, res, { params }) => {
    const { token, record } = await personalTokens.rotate(req.caller!.user, params.id, actor(req));
    res.status(201).set('Cache-Control', 'no-store').location(`/api/v1/tokens/${record.id}`).json({ ...describe(record), token } satisfies z.input<typeof newTokenSchema>);
  });
  router.all('/api/v1/tokens/:id/rotate', methodNotAllowed(['POST']));

  route(router, meOperation, [], async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const caller = await callers.identify(req);
    if (caller) {
      res.json({ sub: caller.user.id, username: caller.user.username, email: caller.user.email, scopes: caller.scopes, credential: caller.credential } satisfies z.input<typeof meSchema>);
      return;
    }
    // An OAuth access token (what `tessera login` holds): a person's, or a client's own.
    const dpopToken = dpopAuthorizationToken(req.headers.authorization);
    const bearer = dpopToken ?? presentedCredential(req, BEARER_ONLY)?.token;
    const active = bearer ? await verifier.verify(bearer, { ip: req.ip ?? null, senderConstrained: true }) : null;
    if (active?.kind === 'access_token') {
      try {
        await senderConstraint(active, { token: bearer!, scheme: dpopToken ? 'dpop' : 'bearer', method: req.method, url: `${req.protocol}://${req.get('host')}${req.originalUrl}`, headers: req.headers });
      } catch (error) {
        if (!(error instanceof SenderConstraintRefusal)) throw error;
        throw new AppError(401, error.error, error.message, { headers: error.headers });
      }
      const user = active.username !== null ? await findUserById(active.sub) : null;
      res.json({ sub: active.sub, username: active.username, email: user?.email ?? null, scopes: active.scopes, credential: 'access_token', client_id: active.clientId, exp: active.exp } satisfies z.input<typeof meSchema>);
      return;
    }
    throw AppError.unauthorized('A valid credential is required.', { 'WWW-Authenticate': dpopToken ? 'DPoP error="invalid_token"' : 'Bearer realm="tessera", error="invalid_token"' });
  });
  router.all('/api/v1/me', methodNotAllowed(['GET']));

  return router;
}
