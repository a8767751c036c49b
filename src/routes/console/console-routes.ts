import { Router } from 'express';
import type { AccountService } from '../../accounts/account-service.ts';
import type { AuditQuery } from '../../audit/audit-query.ts';
import type { ClientService } from '../../clients/client-service.ts';
import { ADMIN_SCOPE, accountScopeCatalog } from '../../config/admin-scope.ts';
import type { Config } from '../../config/schema.ts';
import { answerErrorsWithPages } from '../../http/error-response.ts';
import { sendPage } from '../../http/pages.ts';
import type { ShownOnce } from '../../http/shown-once.ts';
import type { SigningKeyService } from '../../oauth/signing-key-service.ts';
import type { PasswordSignIn } from '../../sessions/password-sign-in.ts';
import { html } from '../../views/html.ts';
import type { CallerAuthenticator } from '../settings/caller.ts';
import { createAuditConsoleRoutes } from './audit-console-routes.ts';
import { createClientConsoleRoutes } from './client-console-routes.ts';
import { consoleViewer } from './console-requests.ts';
import { consolePage, type Viewer } from './console-views.ts';
import { createKeyConsoleRoutes } from './key-console-routes.ts';
import { createUserConsoleRoutes } from './user-console-routes.ts';
import { createIdentityConsoleRoutes } from './identity-console-routes.ts';
import type { IdentityProviderService } from '../../identity-providers/identity-provider-service.ts';

export interface AdminConsoleDependencies {
  config: Config;
  callers: CallerAuthenticator;
  accounts: AccountService;
  signIn: Pick<PasswordSignIn, 'unlock'>;
  auditQuery: AuditQuery;
  clients: ClientService;
  signingKeys: SigningKeyService;
  shownOnce: ShownOnce;
  identityProviders: IdentityProviderService;
}

const SECTIONS = [
  { href: '/admin/users', title: 'Users', text: 'Find an account; create one; change its e-mail, scopes or password; disable it, lift its lockouts, sign it out everywhere, delete it.' },
  { href: '/admin/clients', title: 'Clients', text: 'The OAuth clients: register one (its secret is shown once), rotate a secret, grant introspection, delete.' },
  { href: '/admin/keys', title: 'Signing keys', text: 'The keys that sign access tokens, and their rotation.' },
  { href: '/admin/identity-providers', title: 'Identity providers', text: 'The upstream providers people sign in through, and the redirect URI to register at each.' },
  { href: '/admin/audit', title: 'Audit log', text: 'Who did what, to whom, from where: filter by user, action, client and time.' },
];

/**
 * The admin console: server-rendered pages under /admin for a browser session holding the admin
 * scope, on the services the admin API calls (docs/admin-console.md). Every refusal is a page;
 * every change is a form with the session's CSRF token, answered with a redirect (a reload never
 * repeats it); what cannot be undone asks first on a page of its own.
 */
export function createAdminConsoleRoutes(deps: AdminConsoleDependencies): Router {
  const router = Router();
  const guard = deps.callers.requireLoginSession('page', { scope: ADMIN_SCOPE });

  router.use(
    '/admin',
    (_req, res, next) => {
      answerErrorsWithPages(res);
      next();
    },
    guard,
    (req, res, next) => {
      const { user, sessionId } = req.caller!;
      res.locals.viewer = { username: user.username, userId: user.id, csrf: deps.callers.csrfFor(sessionId!) } satisfies Viewer;
      next();
    },
  );

  router.get('/admin', (_req, res) => {
    sendPage(
      res,
      200,
      consolePage(
        consoleViewer(res),
        'overview',
        'Overview',
        html`<h1>Administration</h1>
<ul class="sections">${SECTIONS.map((s) => html`<li><a href="${s.href}">${s.title}</a><p class="muted">${s.text}</p></li>`)}</ul>
<p class="muted">Scripts can do the same through the admin API (<code>/api/v1/admin/</code>) with an API session.</p>`,
      ),
    );
  });

  router.use(createUserConsoleRoutes({ ...deps, scopeCatalog: accountScopeCatalog(deps.config.scopes), defaultScopes: deps.config.accounts.defaultScopes }));
  router.use(createClientConsoleRoutes(deps));
  router.use(createKeyConsoleRoutes(deps));
  router.use(createAuditConsoleRoutes(deps));
  router.use(createIdentityConsoleRoutes({ ...deps, issuer: deps.config.issuer }));
  return router;
}
