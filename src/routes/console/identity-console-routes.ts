import { Router, type Request } from 'express';
import type { AccountService } from '../../accounts/account-service.ts';
import type { User } from '../../accounts/user.ts';
import { redirectUriOf } from '../../config/identity-providers.ts';
import { sendPage } from '../../http/pages.ts';
import type { IdentityProviderService } from '../../identity-providers/identity-provider-service.ts';
import { AppError } from '../../shared/errors.ts';
import { html } from '../../views/html.ts';
import { adminActor } from '../admin/admin-requests.ts';
import { consoleViewer } from './console-requests.ts';
import { consolePage, csrfField, naming, notice, when } from './console-views.ts';
import { userPath } from './user-pages.ts';

// The console's pages on upstream identity providers (docs/sign-in-providers.md): the configured
// providers with the redirect URI to register at each, and an account's linked identities, each
// removable by an administrator.

export interface IdentityConsoleDependencies {
  accounts: AccountService;
  identityProviders: IdentityProviderService;
  issuer: string;
}

export function createIdentityConsoleRoutes({ accounts, identityProviders, issuer }: IdentityConsoleDependencies): Router {
  const router = Router();

  async function target(req: Request): Promise<User> {
    const user = await accounts.findUserById(String(req.params.id));
    if (!user) throw AppError.notFound('No such user: it may have been deleted.');
    return user;
  }

  router.get('/admin/identity-providers', (_req, res) => {
    const providers = identityProviders.providers();
    sendPage(
      res,
      200,
      consolePage(
        consoleViewer(res),
        'overview',
        'Identity providers',
        html`<p class="crumbs"><a href="/admin">Administration</a> /</p>
<h1>Identity providers</h1>
<p class="muted">People sign in through these providers (the <code>identityProviders</code> configuration). Register each one's redirect URI at the provider.</p>
${providers.length
  ? html`<div class="table-wrap"><table class="stack data">
<thead><tr><th scope="col">Name</th><th scope="col">Preset</th><th scope="col">Issuer</th><th scope="col">Redirect URI</th><th scope="col">New accounts</th></tr></thead>
<tbody>${providers.map(
      (p) => html`<tr><td><strong>${p.name}</strong><br><code>${p.id}</code></td><td data-label="Preset">${p.preset}</td><td data-label="Issuer"><code class="wrap">${p.issuer}</code></td><td data-label="Redirect URI"><code class="wrap">${redirectUriOf(issuer, p.id)}</code></td><td data-label="New accounts">${p.createAccounts ? 'created at first sign-in' : 'only linked accounts'}</td></tr>`,
    )}</tbody></table></div>`
  : html`<p class="muted">No identity provider is configured: people sign in with passwords only.</p>`}`,
      ),
    );
  });

  router.get('/admin/users/:id/identities', async (req, res) => {
    const user = await target(req);
    const viewer = consoleViewer(res);
    const links = await identityProviders.listLinks(user.id);
    const path = `${userPath(user)}/identities`;
    sendPage(
      res,
      200,
      consolePage(
        viewer,
        'users',
        `${user.username}: linked sign-ins`,
        html`<p class="crumbs"><a href="/admin/users">Users</a> / <a href="${userPath(user)}">${user.username}</a> /</p>
<h1>Linked sign-ins of ${user.username}</h1>
${notice(req.query.done === 'removed' ? 'The link was removed.' : undefined)}
<p class="muted">${(await accounts.hasPassword(user.id)) ? 'The account has a password.' : 'The account has no password: without a link it can only be used after you set one.'}</p>
${links.length
  ? html`<div class="table-wrap"><table class="stack data">
<thead><tr><th scope="col">Provider</th><th scope="col">Subject</th><th scope="col">E-mail there</th><th scope="col">Linked</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${links.map(
      (l) => html`<tr><td><strong>${l.providerName}</strong></td><td data-label="Subject"><code class="wrap">${l.subject}</code></td><td data-label="E-mail there">${l.email ?? html`<span class="muted">—</span>`}</td><td data-label="Linked">${when(l.linkedAt)}</td><td data-label="Last used">${when(l.lastUsedAt)}</td>
<td><form method="post" action="${path}/remove">${csrfField(viewer)}<input type="hidden" name="provider" value="${l.provider}"><input type="hidden" name="subject" value="${l.subject}"><button type="submit" class="danger">Remove${naming(`the ${l.providerName} link of ${user.username}`)}</button></form></td></tr>`,
    )}</tbody></table></div>`
  : html`<p class="muted">No identity provider is linked to this account.</p>`}`,
      ),
    );
  });

  router.post('/admin/users/:id/identities/remove', async (req, res) => {
    const user = await target(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    await identityProviders.unlink(user, String(body.provider ?? ''), String(body.subject ?? ''), adminActor(req));
    res.redirect(303, `${userPath(user)}/identities?done=removed`);
  });

  return router;
}
