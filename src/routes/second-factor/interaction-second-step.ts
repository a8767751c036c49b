import type { Page } from '../../http/pages.ts';
import { html } from '../../views/html.ts';
import { secondStepPage } from './second-factor-pages.ts';

// The second step on the OAuth sign-in page (a web app's authorization, a device approval): the
// code form posts to /interaction/:uid/second-factor, and Deny stays available.

export function secondStepAtInteraction(o: { uid: string; csrf: string; username: string; error?: string; passkeyOptions?: string | null }): Page {
  return secondStepPage({
    passkeyOptions: o.passkeyOptions ?? null,
    action: `/interaction/${o.uid}/second-factor`,
    csrf: o.csrf,
    username: o.username,
    ...(o.error ? { error: o.error } : {}),
    exit: { action: `/interaction/${o.uid}`, csrf: o.csrf, label: 'Deny', fields: { decision: 'deny' } },
  });
}

/** The operator requires a second factor of this account and it has none yet. */
/** Without `csrf` (a sign-in through an identity provider, which holds no form token of the interaction) the page offers no Deny. */
export function secondFactorEnrolmentNeededPage(o: { uid: string; csrf?: string }): Page {
  return {
    title: 'Two-step sign-in needed',
    body: html`<h1>Set up two-step sign-in first</h1>
<p class="error" role="alert">Your account must use two-step sign-in before it can approve access.</p>
<p>Open <a href="/login?next=/settings/two-factor" target="_blank" rel="noopener">your settings</a> in a new tab, sign in and set up an authenticator app. Then come back here and approve again.</p>
${o.csrf === undefined
  ? html`<div class="actions"><a class="button" href="/interaction/${o.uid}">Back</a></div>`
  : html`<form method="post" action="/interaction/${o.uid}">
  <input type="hidden" name="csrf" value="${o.csrf}">
  <input type="hidden" name="decision" value="deny">
  <div class="actions"><a class="button" href="/interaction/${o.uid}">Back</a><button type="submit" class="secondary">Deny</button></div>
</form>`}`,
  };
}
