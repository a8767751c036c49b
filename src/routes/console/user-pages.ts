import type { User } from '../../accounts/user.ts';
import type { AuditEvent } from '../../audit/audit-log.ts';
import { html } from '../../views/html.ts';
import type { Page } from '../../http/pages.ts';
import { auditTable, type PartyNames } from './audit-pages.ts';
import { checkboxes, consolePage, csrfField, formError, naming, notice, textField, when, type FormState, type Viewer } from './console-views.ts';

export interface ScopeChoice {
  value: string;
  description: string;
}

export const userPath = (user: Pick<User, 'id'>) => `/admin/users/${encodeURIComponent(user.id)}`;

const status = (user: User) => (user.disabled ? html`<span class="badge danger">disabled</span>` : html`<span class="badge">active</span>`);

export interface UsersPageOptions {
  viewer: Viewer;
  query: string;
  users: User[];
  /** The cursor of the page after this one (null on the last). */
  nextCursor: string | null;
  /** Whether this is a later page than the first. */
  paged: boolean;
  scopes: ScopeChoice[];
  defaultScopes: string[];
  create?: FormState;
  notice?: string;
}

export function usersPage(o: UsersPageOptions): Page {
  const rows = o.users.map(
    (u) => html`<tr>
  <td><a href="${userPath(u)}">${u.username}</a></td>
  <td data-label="E-mail">${u.email ?? html`<span class="muted">—</span>`}</td>
  <td data-label="Scopes">${u.allowedScopes.map((s) => html`<code>${s}</code> `)}</td>
  <td data-label="Status">${status(u)}</td>
  <td data-label="Created">${when(u.createdAt)}</td>
</tr>`,
  );
  const more = (cursor: string) => `/admin/users?${new URLSearchParams({ ...(o.query ? { q: o.query } : {}), cursor }).toString()}`;
  return consolePage(
    o.viewer,
    'users',
    'Users',
    html`<h1>Users</h1>
${notice(o.notice)}
<form method="get" action="/admin/users" class="search" role="search">
  <label for="search-q">Find a user by part of their username or e-mail</label>
  <div class="row"><input id="search-q" name="q" type="text" value="${o.query}" maxlength="254"><button type="submit">Search</button></div>
</form>
<section aria-labelledby="found">
<h2 id="found">${o.query ? html`Users matching “${o.query}”` : 'All users'}</h2>
${o.users.length
  ? html`<div class="table-wrap"><table class="stack data">
<thead><tr><th scope="col">Username</th><th scope="col">E-mail</th><th scope="col">Scopes</th><th scope="col">Status</th><th scope="col">Created</th></tr></thead>
<tbody>${rows}</tbody></table></div>`
  : html`<p class="muted">${o.query ? 'No user matches.' : 'No users on this page.'}</p>`}
<nav class="pager" aria-label="Pages of users">
  ${o.paged ? html`<a href="/admin/users${o.query ? `?${new URLSearchParams({ q: o.query }).toString()}` : ''}">First page</a>` : ''}
  ${o.nextCursor ? html`<a href="${more(o.nextCursor)}" rel="next">Next page</a>` : ''}
</nav>
</section>
<section aria-labelledby="new-user">
<h2 id="new-user">New user</h2>
${formError(o.create)}
<form method="post" action="/admin/users" novalidate>
  ${csrfField(o.viewer)}
  ${textField({ form: 'create', name: 'username', label: 'Username', state: o.create, autocomplete: 'off', required: true, hint: 'Up to 64 letters, digits and . _ @ -, starting with a letter or digit.' })}
  ${textField({ form: 'create', name: 'email', label: 'E-mail (optional)', type: 'email', state: o.create, autocomplete: 'off' })}
  ${textField({ form: 'create', name: 'password', label: 'Password', type: 'password', state: o.create, autocomplete: 'new-password', required: true })}
  ${checkboxes({ form: 'create', name: 'scopes', legend: 'Scopes', state: o.create, choices: o.scopes, checked: o.defaultScopes })}
  <div class="actions"><button type="submit">Create user</button></div>
</form>
</section>`,
  );
}

export interface UserPageOptions {
  viewer: Viewer;
  user: User;
  scopes: ScopeChoice[];
  events: AuditEvent[];
  names: PartyNames;
  notice?: string;
  /** The form that was refused, if one was. */
  refused?: { form: 'email' | 'scopes' | 'password' | 'status'; state: FormState };
}

export function userPage(o: UserPageOptions): Page {
  const { user } = o;
  const self = user.id === o.viewer.userId;
  const path = userPath(user);
  const state = (form: NonNullable<UserPageOptions['refused']>['form']) => (o.refused?.form === form ? o.refused.state : undefined);
  return consolePage(
    o.viewer,
    'users',
    user.username,
    html`<p class="crumbs"><a href="/admin/users">Users</a> /</p>
<h1>${user.username} ${status(user)}</h1>
${notice(o.notice)}
${formError(state('status'))}
<dl class="facts">
  <dt>E-mail</dt><dd>${user.email ?? html`<span class="muted">none</span>`}</dd>
  <dt>Scopes</dt><dd>${user.allowedScopes.map((s) => html`<code>${s}</code> `)}</dd>
  <dt>Created</dt><dd>${when(user.createdAt)}</dd>
  <dt>Password changed</dt><dd>${when(user.passwordChangedAt)}</dd>
  <dt>Id</dt><dd><code>${user.id}</code></dd>
</dl>
${self ? html`<p class="muted">This is your account: another administrator can disable or delete it, or take its <code>admin</code> scope.</p>` : ''}

<section aria-labelledby="access">
<h2 id="access">Access</h2>
<div class="actions">
${self
  ? ''
  : user.disabled
    ? html`<form method="post" action="${path}/enable">${csrfField(o.viewer)}<button type="submit">Enable${naming(user.username)}</button></form>`
    : html`<form method="post" action="${path}/disable">${csrfField(o.viewer)}<button type="submit" class="danger">Disable${naming(user.username)}</button></form>`}
<form method="post" action="${path}/unlock">${csrfField(o.viewer)}<button type="submit" class="secondary">Lift sign-in lockouts${naming(`of ${user.username}`)}</button></form>
<a class="button secondary" href="${path}/sign-out">Sign${naming(user.username)} out everywhere…</a>
<a class="button secondary" href="${path}/identities">Linked sign-ins${naming(`of ${user.username}`)}</a>
</div>
<p class="muted">Disabling ends every session and login of the account and refuses its tokens until it is enabled again. Signing out everywhere ends its API and browser sessions and its OAuth logins; its personal access tokens stay.</p>
</section>

<section aria-labelledby="email-heading">
<h2 id="email-heading">E-mail</h2>
${formError(state('email'))}
<form method="post" action="${path}/email" novalidate>
  ${csrfField(o.viewer)}
  ${textField({ form: 'email', name: 'email', label: 'E-mail', type: 'email', state: state('email'), value: user.email ?? '', autocomplete: 'off', hint: 'Leave empty to remove it.' })}
  <div class="actions"><button type="submit">Save e-mail${naming(`of ${user.username}`)}</button></div>
</form>
</section>

<section aria-labelledby="scopes-heading">
<h2 id="scopes-heading">Scopes</h2>
${formError(state('scopes'))}
<form method="post" action="${path}/scopes">
  ${csrfField(o.viewer)}
  ${checkboxes({ form: 'scopes', name: 'scopes', legend: `What ${user.username} may hold`, state: state('scopes'), choices: o.scopes, checked: user.allowedScopes })}
  <div class="actions"><button type="submit">Save scopes${naming(`of ${user.username}`)}</button></div>
</form>
</section>

<section aria-labelledby="password-heading">
<h2 id="password-heading">Password</h2>
${formError(state('password'))}
<form method="post" action="${path}/password" novalidate>
  ${csrfField(o.viewer)}
  ${textField({ form: 'password', name: 'password', label: 'New password', type: 'password', state: state('password'), autocomplete: 'new-password', required: true, hint: 'Setting one ends every session of the account.' })}
  <div class="actions"><button type="submit">Set password${naming(`for ${user.username}`)}</button></div>
</form>
</section>

<section aria-labelledby="activity">
<h2 id="activity">Recent activity</h2>
${o.events.length ? auditTable(o.events, o.names) : html`<p class="muted">Nothing yet.</p>`}
<p><a href="/admin/audit?${new URLSearchParams({ user: user.username }).toString()}">The whole audit log of ${user.username}</a></p>
</section>

${self
  ? ''
  : html`<section aria-labelledby="delete-heading">
<h2 id="delete-heading">Delete</h2>
<p class="muted">Deleting ends its sessions and logins and removes its personal access tokens; the audit log keeps its history.</p>
<a class="button danger" href="${path}/delete">Delete${naming(user.username)}</a>
</section>`}`,
  );
}
