import { Router, type Request, type Response } from 'express';
import { ownAccountRefusal, type AccountService } from '../../accounts/account-service.ts';
import type { User } from '../../accounts/user.ts';
import type { AuditQuery } from '../../audit/audit-query.ts';
import { sendPage } from '../../http/pages.ts';
import type { PasswordSignIn } from '../../sessions/password-sign-in.ts';
import { AppError } from '../../shared/errors.ts';
import { adminActor } from '../admin/admin-requests.ts';
import { confirmPage, counted, formValues, list, refusedForm, text, type FormState } from './console-views.ts';
import { consoleViewer, countParam, partyNames, refusal } from './console-requests.ts';
import { html } from '../../views/html.ts';
import { userPage, userPath, usersPage, type ScopeChoice } from './user-pages.ts';

const PAGE_SIZE = 50;

export interface UserConsoleDependencies {
  accounts: AccountService;
  signIn: Pick<PasswordSignIn, 'unlock'>;
  auditQuery: Pick<AuditQuery, 'page'>;
  /** What an account may hold (the token catalog and `admin`), with descriptions. */
  scopeCatalog: Record<string, string>;
  defaultScopes: string[];
}

/** What a `done` in the URL of the page after a change says (never text from the URL itself). */
function doneNotice(req: Request, user: User): string | undefined {
  switch (req.query.done) {
    case 'created':
      return `Created ${user.username}.`;
    case 'disabled':
      return `Disabled ${user.username}: its sessions and logins have ended.`;
    case 'enabled':
      return `Enabled ${user.username}.`;
    case 'unlocked':
      return `Lifted the sign-in lockouts of ${user.username} (${counted(countParam(req, 'sources'), 'locked source')}).`;
    case 'signed-out':
      return `Signed ${user.username} out everywhere: ${counted(countParam(req, 'sessions'), 'session')} and ${counted(countParam(req, 'logins'), 'login')} ended.`;
    case 'email':
      return `Saved the e-mail of ${user.username}.`;
    case 'scopes':
      return `Saved the scopes of ${user.username}.`;
    case 'password':
      return `Set a new password for ${user.username}; its sessions have ended.`;
    default:
      return undefined;
  }
}

/** The console's pages on accounts: /admin/users (search, create) and /admin/users/:id. */
export function createUserConsoleRoutes(deps: UserConsoleDependencies): Router {
  const { accounts, signIn, auditQuery } = deps;
  const router = Router();
  const scopes: ScopeChoice[] = Object.entries(deps.scopeCatalog).map(([value, description]) => ({ value, description }));

  /** A held path scope's description: its name's, and the path. */
  const describeHeld = (scope: string): string => {
    const at = scope.indexOf(':/');
    const base = at > 0 ? scope.slice(0, at) : scope;
    return at > 0 ? `${deps.scopeCatalog[base] ?? base} Only under ${scope.slice(at + 1)}.` : (deps.scopeCatalog[base] ?? base);
  };

  async function target(req: Request): Promise<User> {
    const user = await accounts.findUserById(String(req.params.id));
    if (!user) throw AppError.notFound('No such user: it may have been deleted.');
    return user;
  }



  async function renderList(req: Request, res: Response, status: number, extra: { create?: FormState; notice?: string } = {}) {
    const query = typeof req.query.q === 'string' ? req.query.q.trim() : '';
    const cursor = typeof req.query.cursor === 'string' && req.query.cursor ? req.query.cursor : undefined;
    const page = await accounts.searchUsers({ ...(query ? { query } : {}), ...(cursor ? { cursor } : {}), limit: PAGE_SIZE });
    sendPage(res, status, usersPage({ viewer: consoleViewer(res), query, users: page.users, nextCursor: page.nextCursor, paged: cursor !== undefined, scopes, defaultScopes: deps.defaultScopes, ...extra }));
  }

  async function renderUser(req: Request, res: Response, status: number, user: User, refused?: Parameters<typeof userPage>[0]['refused']) {
    const { events } = await auditQuery.page({ userId: user.id }, { limit: 10 });
    const shown = refused ? undefined : doneNotice(req, user);
    // The path scopes the account holds ("storage.read:/atlas") are choices too, ticked, so that
    // saving the form keeps them (they are given with `tessera user scopes` or the admin API).
    const held = user.allowedScopes.filter((scope) => !Object.hasOwn(deps.scopeCatalog, scope)).map((value) => ({ value, description: describeHeld(value) }));
    sendPage(res, status, userPage({ viewer: consoleViewer(res), user, scopes: [...scopes, ...held], events, names: await partyNames(accounts, events), ...(shown ? { notice: shown } : {}), ...(refused ? { refused } : {}) }));
  }

  router.get('/admin/users', async (req, res) => {
    await renderList(req, res, 200, req.query.done === 'deleted' ? { notice: 'The account was deleted.' } : {});
  });

  router.post('/admin/users', async (req, res) => {
    const values = formValues(req.body, ['scopes']);
    try {
      const user = await accounts.createUser(
        { username: text(values, 'username').trim(), email: text(values, 'email').trim() || null, password: text(values, 'password'), scopes: list(values, 'scopes') },
        adminActor(req),
      );
      res.redirect(303, `${userPath(user)}?done=created`);
    } catch (error) {
      const refused = refusal(error);
      if (!refused) throw error;
      await renderList(req, res, refused.status, { create: refusedForm(refused, values, (field) => (['username', 'email', 'password', 'scopes'].includes(field) ? field : undefined)) });
    }
  });

  router.get('/admin/users/:id', async (req, res) => {
    await renderUser(req, res, 200, await target(req));
  });

  /** A change to one account, answered with a redirect to its page (POST/Redirect/GET). */
  const change = (path: string, act: (req: Request, user: User) => Promise<string>) =>
    router.post(`/admin/users/:id/${path}`, async (req, res) => {
      const user = await target(req);
      res.redirect(303, `${userPath(user)}?${await act(req, user)}`);
    });

  change('disable', async (req, user) => {
    await accounts.setDisabled(user.username, true, adminActor(req));
    return 'done=disabled';
  });
  change('enable', async (req, user) => {
    await accounts.setDisabled(user.username, false, adminActor(req));
    return 'done=enabled';
  });
  change('unlock', async (req, user) => {
    const { report } = await signIn.unlock(user.username, adminActor(req));
    return new URLSearchParams({ done: 'unlocked', sources: String(report.lockedSources) }).toString();
  });

  /** A form on the account's page that a refusal sends back to, with what was typed. */
  const form = (path: 'email' | 'scopes' | 'password', act: (req: Request, user: User, values: FormState['values']) => Promise<void>) =>
    router.post(`/admin/users/:id/${path}`, async (req, res) => {
      const user = await target(req);
      const values = formValues(req.body, path === 'scopes' ? ['scopes'] : []);
      try {
        await act(req, user, values);
        res.redirect(303, `${userPath(user)}?done=${path}`);
      } catch (error) {
        const refused = refusal(error);
        if (!refused) throw error;
        await renderUser(req, res, refused.status, user, { form: path, state: refusedForm(refused, values, (field) => (field === path ? path : undefined)) });
      }
    });

  form('email', async (req, user, values) => {
    const email = text(values, 'email').trim() || null;
    if (email?.toLowerCase() !== user.email?.toLowerCase()) await accounts.setEmail(user.username, email, adminActor(req));
  });
  form('scopes', async (req, user, values) => {
    await accounts.setAllowedScopes(user.username, list(values, 'scopes'), adminActor(req));
  });
  form('password', async (req, user, values) => {
    await accounts.changePassword(user.username, text(values, 'password'), adminActor(req));
  });

  router.get('/admin/users/:id/sign-out', async (req, res) => {
    const user = await target(req);
    sendPage(
      res,
      200,
      confirmPage({
        viewer: consoleViewer(res),
        section: 'users',
        title: `Sign ${user.username} out everywhere?`,
        explanation: html`<p>Every API and browser session of <strong>${user.username}</strong> ends, and so does every OAuth login (device or web: its refresh and access tokens), on every node. Its personal access tokens stay; disable the account to stop those too.</p>`,
        action: `${userPath(user)}/sign-out`,
        button: `Sign ${user.username} out everywhere`,
        cancel: userPath(user),
      }),
    );
  });
  change('sign-out', async (req, user) => {
    const ended = await accounts.endSignIns(user.username, adminActor(req));
    return new URLSearchParams({ done: 'signed-out', sessions: String(ended.sessions), logins: String(ended.logins) }).toString();
  });

  router.get('/admin/users/:id/delete', async (req, res) => {
    const user = await target(req);
    // The confirmation page is not offered for a change the service would refuse.
    const own = ownAccountRefusal(user, adminActor(req), { delete: true });
    if (own) throw own;
    sendPage(
      res,
      200,
      confirmPage({
        viewer: consoleViewer(res),
        section: 'users',
        title: `Delete ${user.username}?`,
        explanation: html`<p>The account <strong>${user.username}</strong> goes, with its personal access tokens; its sessions and OAuth logins end on every node. The audit log keeps its history. This cannot be undone.</p>`,
        action: `${userPath(user)}/delete`,
        button: `Delete ${user.username}`,
        cancel: userPath(user),
      }),
    );
  });
  router.post('/admin/users/:id/delete', async (req, res) => {
    const user = await target(req);
    await accounts.deleteUser(user.username, adminActor(req));
    res.redirect(303, '/admin/users?done=deleted');
  });

  return router;
}
