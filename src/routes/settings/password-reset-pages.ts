import type { Page } from '../../http/pages.ts';
import { html } from '../../views/html.ts';

// The pages of a password reset: asking for a link, the answer that never tells whether an
// account matched, choosing the new password, and the end.

export function forgotPage(o: { login?: string; error?: string; sent?: { minutes: number } }): Page {
  return {
    title: 'Forgot your password?',
    body: html`<h1>Forgot your password?</h1>
${o.sent
  ? html`<p class="notice" role="status">If an account with that username or e-mail address has an address to write to, a message with a link to choose a new password is on its way. The link works once, for ${o.sent.minutes} minutes.</p>
<p><a href="/login">Back to sign in</a></p>`
  : html`${o.error ? html`<p class="error" role="alert">${o.error}</p>` : ''}
<p class="muted">Give your username or e-mail address: we send a link to choose a new password to the account's e-mail address.</p>
<form method="post" action="/login/forgot">
  <label for="login">Username or e-mail</label>
  <input id="login" name="login" type="text" autocomplete="username" required value="${o.login ?? ''}">
  <div class="actions"><button type="submit">Send me a link</button><a class="button secondary" href="/login">Cancel</a></div>
</form>`}`,
  };
}

export function resetPage(o: { token: string; minLength: number; errors?: Partial<Record<'new_password' | 'new_password_again', string>> }): Page {
  const field = (name: 'new_password' | 'new_password_again', label: string, hint?: string) => {
    const error = o.errors?.[name];
    const described = [hint ? `${name}-hint` : '', error ? `${name}-error` : ''].filter(Boolean).join(' ');
    return html`<label for="${name}">${label}</label>
  ${hint ? html`<p class="muted" id="${name}-hint">${hint}</p>` : ''}
  <input id="${name}" name="${name}" type="password" autocomplete="new-password" required minlength="${o.minLength}"${error ? html` aria-invalid="true"` : ''}${described ? html` aria-describedby="${described}"` : ''}>
  ${error ? html`<p class="field-error" id="${name}-error">${error}</p>` : ''}`;
  };
  return {
    title: 'Choose a new password',
    body: html`<h1>Choose a new password</h1>
<form method="post" action="/login/reset" novalidate>
  <input type="hidden" name="token" value="${o.token}">
  ${field('new_password', 'New password', `At least ${o.minLength} characters.`)}
  ${field('new_password_again', 'New password again')}
  <p class="muted">Setting it signs you out everywhere: every session, and every app and device you authorized.</p>
  <div class="actions"><button type="submit">Set new password</button></div>
</form>`,
  };
}

export function invalidLinkPage(why = 'It has been used already, it expired, or the password was changed since it was sent.'): Page {
  return {
    title: 'Link no longer valid',
    body: html`<h1>This link no longer works</h1>
<p>${why}</p>
<p><a href="/login/forgot">Ask for a new link</a> · <a href="/login">Sign in</a></p>`,
  };
}

export function resetDonePage(): Page {
  return {
    title: 'Password changed',
    body: html`<h1>Password changed</h1>
<p class="notice" role="status">Your new password is set. Every session and every app or device login of your account has been ended.</p>
<p><a class="button" href="/login">Sign in</a></p>`,
  };
}
