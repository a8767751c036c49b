import type { Page } from '../../http/pages.ts';
import { html, type SafeHtml } from '../../views/html.ts';
import { nav, type SettingsViewer } from './settings-pages.ts';

// The change-password page. Passwords are never put back into the form; a refused field is marked
// (aria-invalid) and described (aria-describedby) by what is wrong with it.

export interface PasswordPageOptions extends SettingsViewer {
  minLength: number;
  /** False for an account without a password of its own (it signs in through an identity provider). */
  hasPassword: boolean;
  errors?: Partial<Record<'current_password' | 'new_password' | 'new_password_again', string>>;
  /** A refusal of the whole form (a limit, a busy service). */
  error?: string;
  /** After a change: how many other sessions were ended. */
  changed?: { endedSessions: number };
}

function field(o: PasswordPageOptions, name: 'current_password' | 'new_password' | 'new_password_again', label: string, autocomplete: string, hint?: string): SafeHtml {
  const error = o.errors?.[name];
  const described = [hint ? `${name}-hint` : '', error ? `${name}-error` : ''].filter(Boolean).join(' ');
  return html`<label for="${name}">${label}</label>
  ${hint ? html`<p class="muted" id="${name}-hint">${hint}</p>` : ''}
  <input id="${name}" name="${name}" type="password" autocomplete="${autocomplete}" required${name === 'current_password' ? '' : html` minlength="${o.minLength}"`}${error ? html` aria-invalid="true"` : ''}${described ? html` aria-describedby="${described}"` : ''}>
  ${error ? html`<p class="field-error" id="${name}-error">${error}</p>` : ''}`;
}

export function passwordPage(o: PasswordPageOptions): Page {
  const others = o.changed?.endedSessions ?? 0;
  return {
    title: 'Change password',
    body: html`${nav(o, 'password')}
<h1>Change password</h1>
${o.changed
  ? html`<p class="notice" role="status">Your password was changed. ${others === 0 ? 'You had no other sessions.' : `${others} other session${others === 1 ? ' was' : 's were'} signed out.`} Apps and devices you authorized keep their access: revoke them on <a href="/settings/logins">Authorized logins</a> if needed.</p>`
  : ''}
${o.error ? html`<p class="error" role="alert">${o.error}</p>` : ''}
${o.hasPassword
  ? html`<form method="post" action="/settings/password" novalidate>
  <input type="hidden" name="csrf" value="${o.csrf}">
  ${field(o, 'current_password', 'Current password', 'current-password')}
  ${field(o, 'new_password', 'New password', 'new-password', `At least ${o.minLength} characters.`)}
  ${field(o, 'new_password_again', 'New password again', 'new-password')}
  <p class="muted">Changing it signs out every other session of your account.</p>
  <div class="actions"><button type="submit">Change password</button></div>
</form>`
  : html`<p>Your account has no password of its own: you sign in through your organisation's login. Change your password there.</p>`}`,
  };
}
