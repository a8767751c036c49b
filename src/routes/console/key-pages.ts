import type { SigningKeyInfo } from '../../oauth/signing-keys.ts';
import type { Page } from '../../http/pages.ts';
import { html } from '../../views/html.ts';
import { consolePage, csrfField, notice, when, type Viewer } from './console-views.ts';

export function keysPage(o: { viewer: Viewer; keys: SigningKeyInfo[]; notice?: string }): Page {
  return consolePage(
    o.viewer,
    'keys',
    'Signing keys',
    html`<h1>Signing keys</h1>
${notice(o.notice)}
<p class="muted">The keys that sign access tokens, published at the JWKS endpoint. After a rotation the new key signs at once on every node; the old one stays published until the tokens it signed expire.</p>
${o.keys.length
  ? html`<div class="table-wrap"><table class="stack data">
<thead><tr><th scope="col">Key id</th><th scope="col">Algorithm</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Published until</th></tr></thead>
<tbody>${o.keys.map(
      (k) => html`<tr><td><code class="wrap">${k.kid}</code></td><td data-label="Algorithm">${k.alg}</td><td data-label="State">${k.state === 'current' ? html`<strong>current</strong>` : 'retiring'}</td><td data-label="Created">${when(k.createdAt)}</td><td data-label="Published until">${k.retireAfter ? when(k.retireAfter) : html`<span class="muted">while current</span>`}</td></tr>`,
    )}</tbody></table></div>`
  : html`<p class="muted">No key yet: the first is made when Tessera first signs.</p>`}
<form method="post" action="/admin/keys/rotate">
  ${csrfField(o.viewer)}
  <div class="actions"><button type="submit">Rotate the signing key</button></div>
</form>`,
  );
}
