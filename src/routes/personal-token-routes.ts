import { Router, type Request } from 'express';
import { z } from 'zod';
import { AppError } from '../shared/errors.ts';
import { methodNotAllowed, requireJsonBody } from '../http/refusals.ts';
import { inApiFieldNames } from '../http/api-field-names.ts';
import { parseInput } from '../shared/validation.ts';
import type { User } from '../accounts/user.ts';
import type { CredentialVerifier } from '../introspection/credential-verifier.ts';
import type { CallerAuthenticator } from './settings/caller.ts';
import type { PersonalToken, PersonalTokenService } from '../personal-tokens/personal-token-service.ts';
import { presentedCredential, type CredentialSources } from '../credentials/presented-credential.ts';

const createSchema = z.object({
  name: z.string(),
  scopes: z.array(z.string()).optional(),
  expires_in_days: z.number().int().positive().nullable().optional(),
});

function describe(token: PersonalToken) {
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
  findUserById: (id: string) => Promise<User | null>;
}


/** Where /api/v1/me looks for an OAuth access token once the callers found no session or personal token. */
const BEARER_ONLY: CredentialSources = { bearer: 'any', sessionHeaders: [] };

/** The service's names of the fields it checks, as this API's clients send them. */
const API_FIELD_NAMES: Readonly<Record<string, string>> = { expiresInDays: 'expires_in_days' };

export function createPersonalTokenRoutes({ personalTokens, callers, verifier, findUserById }: PersonalTokenRouteDependencies): Router {
  const router = Router();
  const manage = callers.requireLoginSession('api');
  const actor = (req: Request) => ({ actor: `user:${req.caller!.user.id}`, ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null });

  router.get('/api/v1/tokens', manage, async (req, res, next) => {
    try {
      res.set('Cache-Control', 'no-store').json({ tokens: (await personalTokens.list(req.caller!.user.id)).map(describe) });
    } catch (error) {
      next(error);
    }
  });

  router.post('/api/v1/tokens', requireJsonBody(), manage, async (req, res, next) => {
    try {
      const input = parseInput(createSchema, req.body ?? {});
      const { token, record } = await personalTokens.create(req.caller!.user, { name: input.name, scopes: input.scopes ?? null, ...(input.expires_in_days !== undefined ? { expiresInDays: input.expires_in_days } : {}) }, actor(req));
      res.status(201).set('Cache-Control', 'no-store').location(`/api/v1/tokens/${record.id}`).json({ ...describe(record), token });
    } catch (error) {
      next(inApiFieldNames(error, API_FIELD_NAMES));
    }
  });
  router.all('/api/v1/tokens', methodNotAllowed(['GET', 'POST']));

  router.delete('/api/v1/tokens/:id', manage, async (req, res, next) => {
    try {
      await personalTokens.revoke(req.caller!.user.id, String(req.params.id), actor(req));
      res.status(204).end();
    } catch (error) {
      next(error);
    }
  });
  router.all('/api/v1/tokens/:id', methodNotAllowed(['DELETE']));

  router.post('/api/v1/tokens/:id/rotate', manage, async (req, res, next) => {
    try {
      const { token, record } = await personalTokens.rotate(req.caller!.user, String(req.params.id), actor(req));
      res.status(201).set('Cache-Control', 'no-store').location(`/api/v1/tokens/${record.id}`).json({ ...describe(record), token });
    } catch (error) {
      next(error);
    }
  });
  router.all('/api/v1/tokens/:id/rotate', methodNotAllowed(['POST']));

  router.get('/api/v1/me', async (req, res, next) => {
    try {
      res.set('Cache-Control', 'no-store');
      const caller = await callers.identify(req);
      if (caller) {
        res.json({ sub: caller.user.id, username: caller.user.username, email: caller.user.email, scopes: caller.scopes, credential: caller.credential });
        return;
      }
      // An OAuth access token (what `tessera login` holds): a person's, or a client's own.
      const bearer = presentedCredential(req, BEARER_ONLY)?.token;
      const active = bearer ? await verifier.verify(bearer, { ip: req.ip ?? null }) : null;
      if (active?.kind === 'access_token') {
        const user = active.username !== null ? await findUserById(active.sub) : null;
        res.json({ sub: active.sub, username: active.username, email: user?.email ?? null, scopes: active.scopes, credential: 'access_token', client_id: active.clientId, exp: active.exp });
        return;
      }
      throw AppError.unauthorized('A valid credential is required.', { 'WWW-Authenticate': 'Bearer realm="tessera", error="invalid_token"' });
    } catch (error) {
      next(error);
    }
  });
  router.all('/api/v1/me', methodNotAllowed(['GET']));

  return router;
}
