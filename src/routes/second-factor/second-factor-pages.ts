import { renderSVG } from 'uqr';
import type { Page } from '../../http/pages.ts';
import type { SecondFactorStatus } from '../../second-factors/second-factor-service.ts';
import { html, type SafeHtml } from '../../views/html.ts';
import { nav, type SettingsViewer } from '../settings/settings-pages.ts';
import { PASSKEY_SCRIPT_PATH } from './passkey-script.ts';

// The pages of second factors: the second step of a sign-in, setting up an authenticator app
// (from the settings, or during a sign-in the operator's policy sends there), the recovery codes
// shown once, and the settings page that lists and removes factors.

const alert = (error: string | undefined) => (error ? html`<p class="error" role="alert" id="form-error">${error}</p>` : '');
const describedBy = (error: string | undefined) => (error ? html` aria-invalid="true" aria-describedby="form-error"` : '');

/** A form that leaves the second step without signing in (the OAuth page's Deny, or starting over). */
export interface StepExit {
  action: string;
  csrf: string;
  label: string;
  /** Extra hidden fields (decision=deny). */
  fields?: Record<string, string>;
}

export function secondStepPage(o: { action: string; csrf: string; username: string; error?: string; exit?: StepExit; passkeyOptions?: string | null }): Page {
  return {
    title: 'Two-step verification',
    body: html`<h1>Two-step verification</h1>
<p>Signing in as <strong>${o.username}</strong>. Open your authenticator app and type the code it shows, or type one of your recovery codes.</p>
${alert(o.error)}
${o.passkeyOptions
  ? html`<form id="passkey-form" method="post" action="${o.action}">
  <input type="hidden" name="csrf" value="${o.csrf}">
  <input type="hidden" name="passkey" id="passkey-answer">
  <div class="actions"><button type="button" data-passkey="get" data-form="passkey-form" data-passkey-options="${o.passkeyOptions}">Use a passkey</button></div>
</form>
<p class="error" role="alert" id="passkey-error" hidden></p>
<p class="muted">Or use a code:</p>`
  : ''}
<form method="post" action="${o.action}">
  <input type="hidden" name="csrf" value="${o.csrf}">
  <label for="code">Code from your app, or a recovery code</label>
  <input id="code" name="code" type="text" class="code" autocomplete="one-time-code" autocapitalize="none" spellcheck="false" required autofocus maxlength="32"${describedBy(o.error)}>
  <div class="actions"><button type="submit">Verify</button></div>
</form>
${o.exit
  ? html`<form method="post" action="${o.exit.action}">
  <input type="hidden" name="csrf" value="${o.exit.csrf}">
  ${Object.entries(o.exit.fields ?? {}).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
  <div class="actions"><button type="submit" class="secondary" formnovalidate>${o.exit.label}</button></div>
</form>`
  : ''}
${o.passkeyOptions ? html`<script src="${PASSKEY_SCRIPT_PATH}"></script>` : ''}`,
  };
}

/** The QR code of an otpauth URI, as an SVG image (img-src allows data: URIs; no script). */
function qrImage(uri: string): SafeHtml {
  const svg = renderSVG(uri, { border: 2, pixelSize: 6, whiteColor: '#ffffff', blackColor: '#000000' });
  return html`<img class="qr" src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}" alt="QR code for your authenticator app (the key is also written out below)" width="240" height="240">`;
}

/** The key as people copy it: groups of four. */
const grouped = (secret: string) => secret.replace(/(.{4})(?=.)/g, '$1 ');

export function totpEnrolPage(o: { action: string; csrf: string; secret: string; uri: string; error?: string; viewer?: SettingsViewer; required?: boolean }): Page {
  return {
    title: 'Set up an authenticator app',
    body: html`${o.viewer ? nav(o.viewer, 'two-factor') : ''}
<h1>Set up an authenticator app</h1>
${o.required ? html`<p class="notice" role="status">Your account must use two-step sign-in. Set it up now to finish signing in.</p>` : ''}
<ol>
  <li>Open an authenticator app (for example FreeOTP, Aegis, Google Authenticator, 1Password) and add an account.</li>
  <li>Scan this QR code, or type the key below.</li>
  <li>Type the 6-digit code the app then shows.</li>
</ol>
${qrImage(o.uri)}
<p><label for="totp-key">Key (time-based, 6 digits, 30 seconds)</label>
<input id="totp-key" class="token-value" type="text" readonly value="${grouped(o.secret)}"></p>
${alert(o.error)}
<form method="post" action="${o.action}">
  <input type="hidden" name="csrf" value="${o.csrf}">
  <label for="code">Code from the app</label>
  <input id="code" name="code" type="text" class="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required maxlength="7"${describedBy(o.error)}>
  <div class="actions"><button type="submit">Turn on</button>${o.viewer ? html`<a class="button secondary" href="/settings/two-factor">Cancel</a>` : ''}</div>
</form>`,
  };
}

export function recoveryCodesPage(o: { codes: string[]; continueHref: string; viewer?: SettingsViewer; enrolled?: boolean }): Page {
  return {
    title: 'Recovery codes',
    body: html`${o.viewer ? nav(o.viewer, 'two-factor') : ''}
<h1>${o.enrolled ? 'Two-step sign-in is on' : 'New recovery codes'}</h1>
<p class="notice" role="status">Save these recovery codes now. <strong>They cannot be shown again.</strong> Each works once, instead of a code from your app, if you lose your phone.</p>
<ul class="facts recovery-codes" aria-label="Recovery codes">${o.codes.map((code) => html`<li><code>${code}</code></li>`)}</ul>
<p><label for="all-codes">All codes, to copy</label>
<input id="all-codes" class="token-value" type="text" readonly value="${o.codes.join(' ')}"></p>
<div class="actions"><button type="button" class="secondary" data-copy="all-codes">Copy</button><a class="button" href="${o.continueHref}">I have saved them: continue</a></div>
<script src="/assets/copy.js"></script>`,
  };
}

export interface PasskeyListing {
  id: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

const when = (value: Date | null) => (value ? html`<time datetime="${value.toISOString()}">${value.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>` : html`never`);

export function twoFactorSettingsPage(o: SettingsViewer & { status: SecondFactorStatus; passkeys?: { list: PasskeyListing[]; registrationOptions: string } | undefined; notice?: string; error?: string; required?: boolean }): Page {
  const active = o.status.totp === 'active';
  return {
    title: 'Two-step sign-in',
    body: html`${nav(o, 'two-factor')}
<h1>Two-step sign-in</h1>
<p class="muted">With two-step sign-in, signing in takes your password and a code from your phone (or a passkey), in the browser, on device approvals and for API logins (the <code>otp</code> parameter).${o.required ? ' Your account must use it.' : ''}</p>
${o.notice ? html`<p class="notice" role="status">${o.notice}</p>` : ''}
${alert(o.error)}
<section aria-labelledby="app">
<h2 id="app">Authenticator app</h2>
${active
  ? html`<p>On. Recovery codes left: <strong>${o.status.recoveryCodesLeft}</strong>.</p>
<form method="post" action="/settings/two-factor/recovery-codes">
  <input type="hidden" name="csrf" value="${o.csrf}">
  <div class="actions"><button type="submit" class="secondary">Make new recovery codes</button></div>
</form>
<form method="post" action="/settings/two-factor/totp/remove">
  <input type="hidden" name="csrf" value="${o.csrf}">
  <label for="proof">To remove the app, type your password or a current code</label>
  <input id="proof" name="proof" type="password" autocomplete="current-password" required${describedBy(o.error)}>
  <div class="actions"><button type="submit" class="danger">Remove authenticator app</button></div>
</form>`
  : html`<p>Not set up.</p>
<form method="post" action="/settings/two-factor/totp">
  <input type="hidden" name="csrf" value="${o.csrf}">
  <div class="actions"><button type="submit">Set up an authenticator app</button></div>
</form>`}
</section>
${o.passkeys === undefined
  ? ''
  : html`<section aria-labelledby="passkeys">
<h2 id="passkeys">Passkeys</h2>
${o.passkeys.list.length
  ? html`<ul class="sections">${o.passkeys.list.map(
      (key) => html`<li><strong>${key.name}</strong> <span class="muted">added ${when(key.createdAt)}, last used ${when(key.lastUsedAt)}</span>
<form method="post" action="/settings/two-factor/passkeys/${key.id}/remove">
  <input type="hidden" name="csrf" value="${o.csrf}">
  <label for="proof-${key.id}">Password or a current code, to remove it</label>
  <input id="proof-${key.id}" name="proof" type="password" autocomplete="current-password" required>
  <div class="actions"><button type="submit" class="danger">Remove passkey “${key.name}”</button></div>
</form></li>`,
    )}</ul>`
  : html`<p>None yet.</p>`}
<form id="passkey-register" method="post" action="/settings/two-factor/passkeys">
  <input type="hidden" name="csrf" value="${o.csrf}">
  <input type="hidden" name="response" id="passkey-answer">
  <label for="passkey-name">Name of a new passkey</label>
  <input id="passkey-name" name="name" type="text" maxlength="60" value="Passkey" required>
  <div class="actions"><button type="button" data-passkey="create" data-form="passkey-register" data-passkey-options="${o.passkeys.registrationOptions}">Add a passkey</button></div>
</form>
<p class="error" role="alert" id="passkey-error" hidden></p>
<script src="${PASSKEY_SCRIPT_PATH}"></script>
</section>`}`,
    wide: true,
  };
}
