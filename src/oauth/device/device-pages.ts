import type { KoaContextWithOIDC } from 'oidc-provider';
import { brandingOf, type BrandedResponse } from '../../views/branding.ts';
import { html, layout, pageCspFor, type SafeHtml } from '../../views/html.ts';

// oidc-provider renders the three pages of the device flow through these hooks. They show the
// same neutral message for a code that does not exist, has expired or was already used, so the
// page never tells whether some other code exists.

function send(ctx: KoaContextWithOIDC, title: string, body: SafeHtml, status = 200): void {
  ctx.status = status;
  ctx.type = 'html';
  // The response went through express's app, which keeps the operator's branding.
  const branding = brandingOf(ctx.res as BrandedResponse);
  ctx.set('Content-Security-Policy', pageCspFor(branding));
  ctx.set('Cache-Control', 'no-store');
  ctx.body = layout(title, body, { branding });
}

/** Pulls the XSRF token out of the form oidc-provider built, to render a form of our own. */
function xsrfOf(form: string): string {
  return /name="xsrf" value="([^"]*)"/.exec(form)?.[1] ?? '';
}

function actionOf(form: string): string {
  return /action="([^"]*)"/.exec(form)?.[1] ?? '/device';
}

/**
 * The page after a device login was refused: cancelled on the page that confirms the code, denied
 * on the sign-in page, or ended there because nothing it asked for may be granted.
 */
async function deniedPage(ctx: KoaContextWithOIDC, out: { error_description?: string } | undefined): Promise<void> {
  // A cancellation knows its device code; a denial surfaces while the sign-in resumes, before
  // oidc-provider loads the client, whose id is then in the resumed parameters.
  const clientId = ctx.oidc?.client?.clientId ?? ctx.oidc?.deviceCode?.clientId ?? (ctx.oidc?.params?.client_id as string | undefined);
  const client = ctx.oidc?.client ?? (clientId ? await ctx.oidc.provider.Client.find(clientId).catch(() => undefined) : undefined);
  const app = client?.clientName ?? clientId ?? 'The application';
  const cancelled = ctx.oidc?.route === 'code_verification';
  const nothingGrantable = /none of the requested scopes/i.test(out?.error_description ?? '');
  const what = cancelled
    ? html`You cancelled the sign-in: ${app} was not connected to your account.`
    : nothingGrantable
      ? html`${app} asked only for access your account may not have, so nothing was granted.`
      : html`You denied the request: ${app} was not connected to your account.`;
  send(
    ctx,
    'Device not connected',
    html`<h1>Device not connected</h1>
<p role="status">${what}</p>
<p>It cannot act as you. You can close this page; the device will say that the sign-in was refused.</p>
<p class="muted">${cancelled ? 'Cancelled by mistake?' : 'Denied by mistake?'} Start the sign-in again on your device, then <a href="/device">enter its new code</a>.</p>`,
  );
}

export async function userCodeInputSource(ctx: KoaContextWithOIDC, form: string, out?: { error_description?: string }, err?: Error & { userCode?: string }): Promise<void> {
  const unavailable = (err as { statusCode?: number } | undefined)?.statusCode === 503;
  if (!unavailable && err?.name === 'AbortedError') {
    await deniedPage(ctx, out);
    return;
  }
  let message = html`<p id="user_code-hint">Enter the code shown by the application on your device.</p>`;
  let invalid = false;
  if (unavailable) {
    message = html`<p class="error" role="alert" id="user_code-hint">The service is temporarily unavailable. Try again in a moment.</p>`;
  } else if (err?.name === 'NoCodeError') {
    invalid = true;
    message = html`<p class="error" role="alert" id="user_code-hint">Enter the code shown by the application on your device.</p>`;
  } else if (err && err.userCode) {
    invalid = true;
    // One message for a code that is unknown, expired or used: the page never tells which.
    message = html`<p class="error" role="alert" id="user_code-hint">That code did not work. It may be mistyped, or it has expired or was already used: a code works once, for a few minutes. Check the code on your device, or start the sign-in there again for a new one.</p>`;
  } else if (err) {
    message = html`<p class="error" role="alert" id="user_code-hint">Something went wrong. Start again from your device.</p>`;
  }
  send(
    ctx,
    'Connect a device',
    html`<h1>Connect a device</h1>
${message}
<form method="post" action="${actionOf(form)}" autocomplete="off">
  <input type="hidden" name="xsrf" value="${xsrfOf(form)}">
  <label for="user_code">Code</label>
  <input class="code" id="user_code" name="user_code" type="text" placeholder="XXXX-XXXX" maxlength="20" autofocus required autocapitalize="characters" spellcheck="false" aria-describedby="user_code-hint"${invalid ? html` aria-invalid="true"` : ''} value="${err?.userCode ?? ''}">
  <div class="actions"><button type="submit">Continue</button></div>
</form>`,
    unavailable ? 503 : err ? 400 : 200,
  );
}

export async function userCodeConfirmSource(
  ctx: KoaContextWithOIDC,
  form: string,
  client: { clientName?: string; clientId: string },
  _deviceInfo: unknown,
  userCode: string,
): Promise<void> {
  send(
    ctx,
    'Confirm the device',
    html`<h1>Confirm the device</h1>
<p><strong>${client.clientName ?? client.clientId}</strong> is asking to connect to your account.</p>
<p>Check that your device shows this code:</p>
<p class="code-display">${userCode}</p>
<p class="muted">If you did not start this, or the codes differ, cancel.</p>
<form method="post" action="${actionOf(form)}">
  <input type="hidden" name="xsrf" value="${xsrfOf(form)}">
  <input type="hidden" name="user_code" value="${userCode}">
  <div class="actions">
    <button type="submit" name="confirm" value="yes">Continue</button>
    <button type="submit" name="abort" value="yes" class="secondary">Cancel</button>
  </div>
</form>`,
  );
}

export async function successSource(ctx: KoaContextWithOIDC): Promise<void> {
  const client = ctx.oidc.client;
  send(
    ctx,
    'Device connected',
    html`<h1>Device connected</h1>
<p class="notice" role="status">${client?.clientName ?? client?.clientId ?? 'The application'} is now signed in. You can close this page and return to your device.</p>`,
  );
}
