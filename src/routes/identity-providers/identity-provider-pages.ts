import type { IdentityProvider } from '../../config/identity-providers.ts';
import type { UpstreamFailure } from '../../identity-providers/identity-provider-service.ts';
import type { LinkedIdentity } from '../../identity-providers/identity-repository.ts';
import type { Page } from '../../http/pages.ts';
import { html, type SafeHtml } from '../../views/html.ts';

// The pages of sign-in through upstream providers: the buttons on the sign-in pages, the page
// each failure ends on (plain words, never a stack), and the settings page of linked sign-ins.

/** "Sign in with <name>" links, one per provider, under the password form; empty without providers. */
export function providerButtons(providers: readonly IdentityProvider[], hrefFor: (provider: IdentityProvider) => string): SafeHtml {
  if (providers.length === 0) return html``;
  return html`<section class="upstream" aria-labelledby="upstream-heading">
<h2 id="upstream-heading">Or sign in with</h2>
<ul class="upstream-list">${providers.map((provider) => html`<li><a class="button secondary" href="${hrefFor(provider)}">Sign in with ${provider.name}</a></li>`)}</ul>
</section>`;
}

const FAILURES: Record<UpstreamFailure, { status: number; title: string; text: (name: string) => string }> = {
  unknown_provider: { status: 404, title: 'Unknown sign-in provider', text: () => 'This service does not offer that way to sign in. Go back and choose another.' },
  limited: { status: 429, title: 'Too many sign-ins', text: () => 'Too many sign-ins were started from your address. Wait a minute, then try again.' },
  expired: {
    status: 400,
    title: 'This sign-in link is no longer valid',
    text: (name) => `The answer from ${name} was already used, or the sign-in took too long. Nothing was changed. Start the sign-in again.`,
  },
  other_browser: { status: 400, title: 'Sign-in started elsewhere', text: (name) => `This answer from ${name} belongs to a sign-in started in another browser. Nothing was changed. Start the sign-in again here.` },
  refused: { status: 403, title: 'Sign-in not completed', text: (name) => `${name} did not sign you in (you may have declined, or ${name} refused). Nothing was changed. You can try again, or choose another way to sign in.` },
  rejected: {
    status: 400,
    title: 'Sign-in answer rejected',
    text: (name) => `The answer that came back did not pass our checks (it may not come from ${name}). Nothing was changed. Start the sign-in again; if this keeps happening, tell the service's administrators.`,
  },
  unavailable: { status: 502, title: 'Provider unavailable', text: (name) => `${name} cannot be reached right now. Nothing was changed. Try again in a few minutes, or choose another way to sign in.` },
  disabled: { status: 403, title: 'Account disabled', text: () => 'The account linked to this sign-in is disabled. Contact the service\'s administrators.' },
  not_linked: { status: 403, title: 'No account for this sign-in', text: (name) => `No account is linked to this ${name} sign-in, and this service does not create accounts from ${name}. Sign in another way, then link ${name} in your settings.` },
  linked_elsewhere: { status: 409, title: 'Already linked to another account', text: (name) => `This ${name} sign-in is already linked to another account. It was not linked to yours.` },
  link_session_lost: { status: 403, title: 'Linking not completed', text: (name) => `Your session ended, or another account signed in, while you were at ${name}. Nothing was linked. Sign in and start again.` },
};

/** `providerError`: the provider's `error` code, shown only when it looks like one (it comes from the URL). */
export function failurePage(reason: UpstreamFailure, provider: IdentityProvider | null, providerError?: string): { status: number; page: Page } {
  const failure = FAILURES[reason];
  const name = provider?.name ?? 'the provider';
  return {
    status: failure.status,
    page: {
      title: failure.title,
      body: html`<h1>${failure.title}</h1>
<p class="error" role="alert">${failure.text(name)}</p>
${reason === 'refused' && providerError && /^[A-Za-z0-9_.-]{1,64}$/.test(providerError) ? html`<p class="muted">${name} answered: <code>${providerError}</code></p>` : ''}
<p><a href="/login">Back to sign-in</a></p>`,
    },
  };
}

const date = (value: Date | null) => (value ? html`<time datetime="${value.toISOString()}">${value.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>` : html`<span class="muted">never</span>`);

export interface SignInMethodsOptions {
  csrf: string;
  links: (LinkedIdentity & { providerName: string })[];
  providers: readonly IdentityProvider[];
  hasPassword: boolean;
  notice?: string;
  error?: string;
}

/** The body of /settings/sign-in: linked providers (each removable), and links to link another. */
export function signInMethodsBody(o: SignInMethodsOptions): SafeHtml {
  const rows = o.links.map(
    (link) => html`<tr>
  <td><strong>${link.providerName}</strong>${link.email ? html`<br><span class="muted">${link.email}</span>` : ''}</td>
  <td data-label="Account there"><code class="wrap">${link.subject}</code></td>
  <td data-label="Linked">${date(link.linkedAt)}</td>
  <td data-label="Last used">${date(link.lastUsedAt)}</td>
  <td><form method="post" action="/settings/sign-in/unlink" class="inline">
    <input type="hidden" name="csrf" value="${o.csrf}">
    <input type="hidden" name="provider" value="${link.provider}">
    <input type="hidden" name="subject" value="${link.subject}">
    <button type="submit" class="danger" aria-label="Unlink ${link.providerName} (${link.subject})">Unlink</button>
  </form></td>
</tr>`,
  );
  return html`<h1>Sign-in methods</h1>
${o.notice ? html`<p class="notice" role="status">${o.notice}</p>` : ''}
${o.error ? html`<p class="error" role="alert">${o.error}</p>` : ''}
<p class="muted">${o.hasPassword ? 'Your account has a password here.' : 'Your account has no password here: you sign in through the providers below. Scripts use personal access tokens.'}</p>
<section aria-labelledby="linked">
<h2 id="linked">Linked providers</h2>
${o.links.length
  ? html`<div class="table-wrap"><table class="stack">
<thead><tr><th scope="col">Provider</th><th scope="col">Account there</th><th scope="col">Linked</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>${rows}</tbody></table></div>`
  : html`<p class="muted">No provider is linked to your account.</p>`}
</section>
${o.providers.length
  ? html`<section aria-labelledby="link-new">
<h2 id="link-new">Link a provider</h2>
<p class="muted">You will sign in there; the account you use there then signs you in here.</p>
<ul class="upstream-list">${o.providers.map((p) => html`<li><a class="button secondary" href="/settings/sign-in/link/${p.id}?csrf=${encodeURIComponent(o.csrf)}">Link ${p.name}</a></li>`)}</ul>
</section>`
  : ''}`;
}
