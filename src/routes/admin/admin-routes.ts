import { Router } from 'express';
import { ADMIN_SCOPE } from '../../config/admin-scope.ts';
import type { AccountService } from '../../accounts/account-service.ts';
import type { AuditQuery } from '../../audit/audit-query.ts';
import type { ClientService } from '../../clients/client-service.ts';
import type { SigningKeyService } from '../../oauth/signing-key-service.ts';
import type { PasswordSignIn } from '../../sessions/password-sign-in.ts';
import type { CallerAuthenticator } from '../settings/caller.ts';
import { createAdminAuditRoutes } from './admin-audit-routes.ts';
import { createAdminClientRoutes } from './admin-client-routes.ts';
import { createAdminKeyRoutes } from './admin-key-routes.ts';
import { createAdminUserRoutes } from './admin-user-routes.ts';
import { createAdminIdentityRoutes } from './admin-identity-routes.ts';
import type { IdentityProviderService } from '../../identity-providers/identity-provider-service.ts';

export interface AdminRouteDependencies {
  callers: CallerAuthenticator;
  accounts: AccountService;
  signIn: Pick<PasswordSignIn, 'unlock'>;
  clients: ClientService;
  signingKeys: SigningKeyService;
  auditQuery: AuditQuery;
  /** Upstream identity providers and the accounts' links to them. */
  identityProviders: IdentityProviderService;
  issuer: string;
}

/**
 * The admin API under /api/v1/admin/: for a login session (API session token or the browser's,
 * with CSRF) holding the admin scope; never for a personal access token. Docs: docs/admin-api.md.
 */
export function createAdminRoutes(deps: AdminRouteDependencies): Router {
  const router = Router();
  router.use('/api/v1/admin', deps.callers.requireLoginSession('api', { scope: ADMIN_SCOPE }));
  router.use(createAdminUserRoutes(deps));
  router.use(createAdminClientRoutes(deps));
  router.use(createAdminKeyRoutes(deps));
  router.use(createAdminAuditRoutes(deps));
  router.use(createAdminIdentityRoutes(deps));
  return router;
}
