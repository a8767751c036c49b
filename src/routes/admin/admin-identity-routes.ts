import { Router, type Request } from 'express';
import { z } from 'zod';
import type { AccountService } from '../../accounts/account-service.ts';
import type { User } from '../../accounts/user.ts';
import { redirectUriOf } from '../../config/identity-providers.ts';
import { defineOperation, route } from '../../http/api-operation.ts';
import { errorResponse } from '../../http/common-responses.ts';
import { methodNotAllowed } from '../../http/refusals.ts';
import type { IdentityProviderService } from '../../identity-providers/identity-provider-service.ts';
import { AppError } from '../../shared/errors.ts';
import { ADMIN_CREDENTIALS, ADMIN_DESCRIPTION, ADMIN_FAILURES } from './admin-operations.ts';
import { adminActor, isoOrNull } from './admin-requests.ts';

// Upstream identity providers, for administrators (docs/sign-in-providers.md): the configured
// providers with the redirect URI each needs registered, and each account's linked identities,
// which an administrator can remove.

const TAG = 'Admin: identity providers';
const USERS = '/api/v1/admin/users';

const providerSchema = z.object({
  id: z.string(),
  name: z.string(),
  preset: z.string(),
  issuer: z.string(),
  redirect_uri: z.string().meta({ description: 'What to register at the provider: `<ISSUER>/login/<id>/callback`.' }),
  creates_accounts: z.boolean(),
});

const identitySchema = z.object({
  provider: z.string(),
  provider_name: z.string(),
  subject: z.string().meta({ description: 'The `sub` the provider gives the person.' }),
  email: z.string().nullable().meta({ description: 'The verified e-mail the provider gave at the last sign-in.' }),
  linked_at: z.iso.datetime(),
  last_used_at: z.iso.datetime().nullable(),
});

const userId = z.object({ id: z.string().meta({ description: "The account's id." }) });
const identityPath = z.object({ id: z.string().meta({ description: "The account's id." }), provider: z.string(), subject: z.string() });
const NO_SUCH_USER = errorResponse('No such user.');

export const listIdentityProvidersOperation = defineOperation({
  method: 'get', path: '/api/v1/admin/identity-providers', operationId: 'adminListIdentityProviders', summary: 'List the upstream identity providers and their redirect URIs', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  responses: { 200: { description: 'The providers, in configuration order.', body: z.object({ identity_providers: z.array(providerSchema) }) }, ...ADMIN_FAILURES },
});

export const listIdentitiesOperation = defineOperation({
  method: 'get', path: `${USERS}/:id/identities`, operationId: 'adminListIdentities', summary: "List an account's linked identities at upstream providers", description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: userId,
  responses: { 200: { description: 'The linked identities.', body: z.object({ identities: z.array(identitySchema) }) }, 404: NO_SUCH_USER, ...ADMIN_FAILURES },
});

export const unlinkIdentityOperation = defineOperation({
  method: 'delete', path: `${USERS}/:id/identities/:provider/:subject`, operationId: 'adminUnlinkIdentity', summary: 'Remove a linked identity from an account', description: `${ADMIN_DESCRIPTION} The identity no longer signs in to this account; at its next sign-in it makes a new account if the provider may create accounts.`, tag: TAG, credentials: ADMIN_CREDENTIALS,
  params: identityPath,
  responses: { 204: { description: 'Removed.' }, 404: errorResponse('No such user, or no such linked identity.'), ...ADMIN_FAILURES },
});

export interface AdminIdentityRouteDependencies {
  accounts: AccountService;
  identityProviders: IdentityProviderService;
  issuer: string;
}

export function createAdminIdentityRoutes({ accounts, identityProviders, issuer }: AdminIdentityRouteDependencies): Router {
  const router = Router();

  async function target(req: Request): Promise<User> {
    const user = await accounts.findUserById(String(req.params.id));
    if (!user) throw AppError.notFound('No such user.');
    return user;
  }

  route(router, listIdentityProvidersOperation, [], async (_req, res) => {
    res.set('Cache-Control', 'no-store').json({
      identity_providers: identityProviders.providers().map((p) => ({ id: p.id, name: p.name, preset: p.preset, issuer: p.issuer, redirect_uri: redirectUriOf(issuer, p.id), creates_accounts: p.createAccounts })),
    });
  });
  router.all('/api/v1/admin/identity-providers', methodNotAllowed(['GET']));

  route(router, listIdentitiesOperation, [], async (req, res) => {
    const links = await identityProviders.listLinks((await target(req)).id);
    res.set('Cache-Control', 'no-store').json({
      identities: links.map((l) => ({ provider: l.provider, provider_name: l.providerName, subject: l.subject, email: l.email, linked_at: l.linkedAt.toISOString(), last_used_at: isoOrNull(l.lastUsedAt) })),
    });
  });
  router.all(`${USERS}/:id/identities`, methodNotAllowed(['GET']));

  route(router, unlinkIdentityOperation, [], async (req, res) => {
    await identityProviders.unlink(await target(req), String(req.params.provider), String(req.params.subject), adminActor(req));
    res.status(204).end();
  });
  router.all(`${USERS}/:id/identities/:provider/:subject`, methodNotAllowed(['DELETE']));

  return router;
}
