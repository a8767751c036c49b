import type { AuditEvent } from '../../audit/audit-log.ts';
import type { PersonalToken } from '../../personal-tokens/personal-token-service.ts';
import { html, type SafeHtml } from '../../views/html.ts';
import type { Page } from '../../http/pages.ts';
import { describeEvent } from './security-events.ts';
import type { FormState } from '../console/console-views.ts';

const date = (value: Date | null) => (value ? html`<time datetime="${value.toISOString()}">${value.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>` : html`<span class="muted">—</span>`);

/** Who the settings pages are for: an administrator's navigation also leads to the console. */
export interface SettingsViewer {
  username: string;
  csrf: string;
  admin?: boolean;
}

export function nav({ username, csrf, admin }: SettingsViewer, current: 'tokens' | 'security' | 'sign-in' | 'logins' | 'password' | 'two-factor'): SafeHtml {
  return html`<nav class="tabs" aria-label="Settings">
  <a href="/settings/tokens"${current === 'tokens' ? html` aria-current="page"` : ''}>Access tokens</a>
  <a href="/settings/logins"${current === 'logins' ? html` aria-current="page"` : ''}>Authorized logins</a>
  <a href="/settings/sign-in"${current === 'sign-in' ? html` aria-current="page"` : ''}>Sign-in methods</a>
  <a href="/settings/two-factor"${current === 'two-factor' ? html` aria-current="page"` : ''}>Two-step sign-in</a>
  <a href="/settings/password"${current === 'password' ? html` aria-current="page"` : ''}>Password</a>
  <a href="/settings/security"${current === 'security' ? html` aria-current="page"` : ''}>Security log</a>
  ${admin ? html`<a href="/admin">Administration</a>` : ''}
  <form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="${csrf}"><button type="submit" class="link">Sign out ${username}</button></form>
</nav>`;
}

/** `alternatives`: the buttons of the upstream identity providers (identity-provider-pages.ts); `forgotLink`: mail is configured. */
export function loginPage(options: { csrf: string; next: string; error?: string; username?: string; alternatives?: SafeHtml; forgotLink?: boolean }): Page {
  return {
    title: 'Sign in',
    body: html`<h1>Sign in</h1>
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
<form method="post" action="/login">
  <input type="hidden" name="csrf" value="${options.csrf}">
  <input type="hidden" name="next" value="${options.next}">
  <label for="username">Username or e-mail</label>
  <input id="username" name="username" type="text" autocomplete="username" required autofocus value="${options.username ?? ''}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <div class="actions"><button type="submit">Sign in</button></div>
</form>
${options.forgotLink ? html`<p><a href="/login/forgot">Forgot your password?</a></p>` : ''}
${options.alternatives ?? ''}`,
  };
}

export interface TokensPageOptions extends SettingsViewer {
  tokens: PersonalToken[];
  /** Scopes the user may give a token, with their descriptions; `paths`: it may be narrowed to a path. */
  grantable: { name: string; description: string; paths?: boolean }[];
  expiry: { choices: number[]; defaultDays: number; allowNoExpiry: boolean };
  error?: string;
  notice?: string;
  /** A refused new-token form: what was typed, and why each field was refused. */
  form?: FormState;
}

/** aria-invalid and aria-describedby of a refused field, and its message (ids from `id`). */
function refused(form: FormState | undefined, field: string, id: string): { attributes: SafeHtml | ''; message: SafeHtml | '' } {
  const error = form?.errors[field];
  if (!error) return { attributes: '', message: '' };
  return { attributes: html` aria-invalid="true" aria-describedby="${id}-error"`, message: html`<p class="field-error" id="${id}-error">${error}</p>` };
}

export function tokensPage(o: TokensPageOptions): Page {
  const live = o.tokens.filter((t) => !t.revoked);
  // A refused form keeps what was typed; a fresh one offers read and the default lifetime.
  const typedName = o.form?.values.name;
  /** The path typed beside a path scope, kept when the form is refused. */
  const typedPath = (scope: string) => {
    const value = o.form?.values[`path:${scope}`];
    return typeof value === 'string' ? value : '';
  };
  const typedScopes = o.form?.values.scopes;
  const checked = o.form ? (Array.isArray(typedScopes) ? typedScopes : typeof typedScopes === 'string' ? [typedScopes] : []) : ['read'];
  const typedExpiry = o.form?.values.expires_in_days;
  const chosenExpiry = typeof typedExpiry === 'string' ? typedExpiry : String(o.expiry.defaultDays);
  const name = refused(o.form, 'name', 'name');
  const scopes = refused(o.form, 'scopes', 'scopes');
  const expiry = refused(o.form, 'expires_in_days', 'expires_in_days');
  const rows = live.map(
    (t) => html`<tr>
  <td><strong>${t.name}</strong>${t.expired ? html` <span class="badge">expired</span>` : ''}</td>
  <td data-label="Scopes">${t.scopes.map((s) => html`<code>${s}</code> `)}</td>
  <td data-label="Created">${date(t.createdAt)}</td>
  <td data-label="Expires">${t.expiresAt ? date(t.expiresAt) : html`never`}</td>
  <td data-label="Last used">${date(t.lastUsedAt)}${t.lastUsedIp ? html`<br><span class="muted">${t.lastUsedIp}</span>` : ''}</td>
  <td data-label="Token"><code>${t.hint}…</code></td>
  <td><a class="button danger" href="/settings/tokens/${t.id}/revoke">Revoke<span class="visually-hidden"> token “${t.name}”</span></a></td>
</tr>`,
  );
  return {
    title: 'Access tokens',
    body: html`${nav(o, 'tokens')}
<h1>Personal access tokens</h1>
<p class="muted">Tokens let scripts use the API as you, with the scopes you choose. Send one as <code>Authorization: Bearer &lt;token&gt;</code>.</p>
${o.notice ? html`<p class="notice" role="status">${o.notice}</p>` : ''}
${o.error ? html`<p class="error" role="alert">${o.error}</p>` : ''}
<section aria-labelledby="existing">
<h2 id="existing">Your tokens</h2>
${live.length
  ? html`<div class="table-wrap"><table class="stack">
<thead><tr><th scope="col">Name</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col">Token</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${rows}</tbody></table></div>`
  : html`<p class="muted">You have no tokens yet.</p>`}
</section>
<section aria-labelledby="new">
<h2 id="new">New token</h2>
<form method="post" action="/settings/tokens">
  <input type="hidden" name="csrf" value="${o.csrf}">
  ${o.form ? html`<p class="error" role="alert" id="new-token-error">${o.form.message}</p>` : ''}
  <label for="name">Name</label>
  <input id="name" name="name" type="text" maxlength="100" required placeholder="e.g. Laptop upload script" value="${typeof typedName === 'string' ? typedName : ''}"${name.attributes}>
  ${name.message}
  <fieldset${o.form?.errors.scopes ? html` aria-describedby="scopes-error"` : ''}>
    <legend>Scopes</legend>
    ${o.grantable.map(
      (s) => html`<div class="check"><input type="checkbox" id="scope-${s.name}" name="scopes" value="${s.name}"${checked.includes(s.name) ? html` checked` : ''}${o.form?.errors.scopes ? html` aria-invalid="true"` : ''}>
    <label for="scope-${s.name}"><code>${s.name}</code> <span class="muted">${s.description}</span></label>${s.paths
      ? html`
    <label for="path-${s.name}" class="muted">Only under this path<span class="visually-hidden"> for ${s.name}</span> (optional)</label>
    <input id="path-${s.name}" name="path:${s.name}" type="text" maxlength="256" placeholder="/records/123" spellcheck="false" autocapitalize="off" value="${typedPath(s.name)}"${o.form?.errors.scopes && typedPath(s.name) ? html` aria-invalid="true" aria-describedby="scopes-error"` : ''}>`
      : ''}</div>`,
    )}
    ${scopes.message}
  </fieldset>
  <label for="expires_in_days">Expires after</label>
  <select id="expires_in_days" name="expires_in_days"${expiry.attributes}>
    ${o.expiry.choices.map((d) => html`<option value="${d}"${String(d) === chosenExpiry ? html` selected` : ''}>${d} days</option>`)}
    ${o.expiry.allowNoExpiry ? html`<option value="never"${chosenExpiry === 'never' ? html` selected` : ''}>No expiry</option>` : ''}
  </select>
  ${expiry.message}
  <div class="actions"><button type="submit">Create token</button></div>
</form>
</section>`,
    wide: true,
  };
}

export function tokenCreatedPage(o: SettingsViewer & { token: string; record: PersonalToken }): Page {
  return {
    title: 'Token created',
    body: html`${nav(o, 'tokens')}
<h1>Token created</h1>
<p class="notice" role="status">Copy your new token <strong>${o.record.name}</strong> now. <strong>It cannot be shown again.</strong></p>
<label for="new-token">Your token (scopes: ${o.record.scopes.join(', ')})</label>
<div class="copy-row"><input id="new-token" class="token-value" type="text" readonly value="${o.token}"><button type="button" class="secondary" data-copy="new-token">Copy</button></div>
<p class="muted">Store it like a password. If you lose it, revoke it and create another.</p>
<p><a href="/settings/tokens">Back to your tokens</a></p>
<script src="/assets/copy.js"></script>`,
    wide: true,
  };
}

export function revokePage(o: SettingsViewer & { token: PersonalToken }): Page {
  return {
    title: 'Revoke token',
    body: html`${nav(o, 'tokens')}
<h1>Revoke “${o.token.name}”?</h1>
<p>Scripts using <code>${o.token.hint}…</code> will stop working at once. This cannot be undone.</p>
<form method="post" action="/settings/tokens/${o.token.id}/revoke">
  <input type="hidden" name="csrf" value="${o.csrf}">
  <div class="actions"><button type="submit" class="danger">Revoke token<span class="visually-hidden"> “${o.token.name}”</span></button><a class="button secondary" href="/settings/tokens">Cancel</a></div>
</form>`,
  };
}

/** A user agent cut to what tells browsers and tools apart. */
const shortAgent = (agent: string) => (agent.length > 120 ? `${agent.slice(0, 119)}…` : agent);

export interface SecurityPageOptions extends SettingsViewer {
  userId: string;
  events: AuditEvent[];
  /** The link to older events (null: none). */
  olderCursor: string | null;
  /** Whether this page is not the newest (it then links back to it). */
  paged: boolean;
}

export function securityPage(o: SecurityPageOptions): Page {
  const rows = o.events.map((event) => {
    const { what, details } = describeEvent(event, o.userId);
    return html`<tr>
  <td>${date(event.occurredAt)}</td>
  <td data-label="What"><strong>${what}</strong><br><code class="muted">${event.action}</code></td>
  <td data-label="From" class="wraps">${event.ip ?? '—'}${event.userAgent ? html`<br><span class="muted">${shortAgent(event.userAgent)}</span>` : ''}</td>
  <td data-label="Details" class="wraps">${details.length ? html`<ul class="facts">${details.map((line) => html`<li>${line}</li>`)}</ul>` : html`<span class="muted">—</span>`}</td>
</tr>`;
  });
  const paging = [
    o.paged ? html`<a href="/settings/security">Newest events</a>` : '',
    o.olderCursor ? html`<a href="/settings/security?before=${o.olderCursor}">Older events</a>` : '',
  ].filter(Boolean);
  return {
    title: 'Security log',
    body: html`${nav(o, 'security')}
<h1>Security log</h1>
<p class="muted">Sign-ins on every channel, sessions, devices and apps you connected, and token changes on your account, newest first. Something you do not recognise? Change your password and revoke what you do not use.</p>
${o.events.length
  ? html`<div class="table-wrap"><table class="stack events">
<thead><tr><th scope="col" class="when">When</th><th scope="col" class="what">What</th><th scope="col" class="from">From</th><th scope="col">Details</th></tr></thead>
<tbody>${rows}</tbody></table></div>`
  : html`<p class="muted">Nothing yet.</p>`}
${paging.length ? html`<nav class="paging" aria-label="Pages">${paging}</nav>` : ''}`,
    wide: true,
  };
}

/** The copy button's script, served from Tessera (no inline script: the CSP forbids it). */
export const COPY_SCRIPT = `document.addEventListener('click', function (event) {
  var button = event.target.closest('[data-copy]');
  if (!button) return;
  var input = document.getElementById(button.getAttribute('data-copy'));
  input.select();
  var done = function () { button.textContent = 'Copied'; };
  if (navigator.clipboard) navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand('copy'); done(); });
  else { document.execCommand('copy'); done(); }
});
`;
