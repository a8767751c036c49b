import type { AccountSession } from '../../oauth/adapter/oidc-adapter.ts';
import type { AuthorizedLogin } from '../../oauth/authorized-logins.ts';
import type { ApiSession } from '../../sessions/api-session-store.ts';
import type { Page } from '../../http/pages.ts';
import { html } from '../../views/html.ts';
import { nav, type SettingsViewer } from './settings-pages.ts';

// The "Authorized logins" page: the apps and devices the person let in (oidc-provider grants) and
// their own browser and API sessions, each with a button that names what it ends.

const when = (value: Date | null) => (value ? html`<time datetime="${value.toISOString()}">${value.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>` : html`<span class="muted">—</span>`);
const plain = (value: Date) => `${value.toISOString().slice(0, 16).replace('T', ' ')} UTC`;

const KINDS: Record<string, string> = { device: 'Device or command line', web: 'Web application', service: 'Service', resource_server: 'Resource server' };

/** What the page reports after a change (a fixed set: nothing from the request is echoed). */
export const LOGIN_NOTICES = {
  login: 'The login was revoked: its access and refresh tokens no longer work.',
  session: 'The session was ended.',
  signin: 'The sign-in was ended: the app and device pages ask for your password again in that browser.',
} as const;

export interface AuthorizedLoginsPageOptions extends SettingsViewer {
  logins: AuthorizedLogin[];
  sessions: ApiSession[];
  /** Sign-ins at the app and device pages (oidc-provider sessions). */
  signIns: AccountSession[];
  /** The session this page is shown in. */
  currentSessionId: string | undefined;
  notice?: keyof typeof LOGIN_NOTICES;
}

const shortAgent = (agent: string) => (agent.length > 120 ? `${agent.slice(0, 119)}…` : agent);

export function authorizedLoginsPage(o: AuthorizedLoginsPageOptions): Page {
  const loginRows = o.logins.map(
    (l) => html`<tr>
  <td><strong>${l.clientName}</strong><br><span class="muted">${l.clientKind ? KINDS[l.clientKind] ?? l.clientKind : 'Removed app'}</span></td>
  <td data-label="Access">${l.scopes.map((s) => html`<code>${s}</code> `)}</td>
  <td data-label="Approved">${when(l.approvedAt)}</td>
  <td data-label="Last used">${when(l.lastUsedAt)}</td>
  <td><form method="post" action="/settings/logins/${l.handle}/revoke"><input type="hidden" name="csrf" value="${o.csrf}"><button type="submit" class="danger">Revoke<span class="visually-hidden"> the login of ${l.clientName}${l.approvedAt ? ` approved ${plain(l.approvedAt)}` : ''}</span></button></form></td>
</tr>`,
  );
  const sessionRows = o.sessions.map((s) => {
    const current = s.id === o.currentSessionId;
    return html`<tr>
  <td>${when(s.createdAt)}${current ? html` <span class="badge">this session</span>` : ''}</td>
  <td data-label="From" class="wraps">${s.ip ?? '—'}${s.userAgent ? html`<br><span class="muted">${shortAgent(s.userAgent)}</span>` : ''}</td>
  <td data-label="Last used">${when(s.lastSeenAt)}</td>
  <td data-label="Ends">${when(s.expiresAt)}</td>
  <td><form method="post" action="/settings/sessions/${s.id}/end"><input type="hidden" name="csrf" value="${o.csrf}"><button type="submit" class="danger">${current ? 'Sign out' : 'End'}<span class="visually-hidden"> ${current ? 'of this session' : 'the session'} started ${plain(s.createdAt)}${s.ip ? ` from ${s.ip}` : ''}</span></button></form></td>
</tr>`;
  });
  const signInRows = o.signIns.map(
    (s) => html`<tr>
  <td>${when(s.signedInAt)}</td>
  <td data-label="Ends">${when(s.expiresAt)}</td>
  <td><form method="post" action="/settings/signins/${s.handle}/end"><input type="hidden" name="csrf" value="${o.csrf}"><button type="submit" class="danger">End<span class="visually-hidden"> the sign-in at the app and device pages${s.signedInAt ? ` made ${plain(s.signedInAt)}` : ''}</span></button></form></td>
</tr>`,
  );
  return {
    title: 'Authorized logins',
    body: html`${nav(o, 'logins')}
<h1>Authorized logins</h1>
${o.notice ? html`<p class="notice" role="status">${LOGIN_NOTICES[o.notice]}</p>` : ''}
<section aria-labelledby="apps">
<h2 id="apps">Apps and devices</h2>
<p class="muted">Command-line tools, devices and web applications you let use your account. Revoking one ends its access at once; it has to ask you again.</p>
${o.logins.length
  ? html`<div class="table-wrap"><table class="stack">
<thead><tr><th scope="col">App or device</th><th scope="col">Access</th><th scope="col">Approved</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${loginRows}</tbody></table></div>`
  : html`<p class="muted">No app or device has access to your account.</p>`}
</section>
<section aria-labelledby="sessions">
<h2 id="sessions">Sessions</h2>
<p class="muted">Where you are signed in with your password: browsers and API sessions.</p>
${o.sessions.length
  ? html`<div class="table-wrap"><table class="stack">
<thead><tr><th scope="col">Started</th><th scope="col">From</th><th scope="col">Last used</th><th scope="col">Ends</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${sessionRows}</tbody></table></div>`
  : html`<p class="muted">No sessions.</p>`}
</section>
<section aria-labelledby="signins">
<h2 id="signins">Sign-ins on app and device pages</h2>
<p class="muted">Where you signed in to approve an app or a device: that browser is not asked for your password again until the sign-in ends. Ending it does not revoke what you approved.</p>
${o.signIns.length
  ? html`<div class="table-wrap"><table class="stack">
<thead><tr><th scope="col">Signed in</th><th scope="col">Ends</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${signInRows}</tbody></table></div>`
  : html`<p class="muted">None.</p>`}
</section>`,
    wide: true,
  };
}
