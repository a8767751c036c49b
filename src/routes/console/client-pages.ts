import type { Client } from '../../clients/client-service.ts';
import { CLIENT_KINDS } from '../../config/schema.ts';
import type { Page } from '../../http/pages.ts';
import { html } from '../../views/html.ts';
import { consolePage, csrfField, formError, naming, notice, selectField, textArea, textField, typed, when, type FormState, type Viewer } from './console-views.ts';

export const clientPath = (clientId: string) => `/admin/clients/${encodeURIComponent(clientId)}`;

const KIND_LABELS: Record<(typeof CLIENT_KINDS)[number], string> = {
  device: 'device: a command-line tool signing users in (device flow, public)',
  service: 'service: a backend with its own credentials (client credentials)',
  resource_server: 'resource_server: an API that introspects tokens',
  web: 'web: a website signing users in (authorization code)',
};

const AUTH_METHODS: Record<Client['authMethod'], string> = {
  none: 'none (public)',
  client_secret_basic: 'client secret',
  private_key_jwt: 'signed assertions (private_key_jwt)',
};

export interface ClientsPageOptions {
  viewer: Viewer;
  clients: Client[];
  /** The resources a default resource may name, and the global default. */
  resources: string[];
  defaultResource: string;
  knownScopes: string[];
  create?: FormState;
  notice?: string;
}

export function clientsPage(o: ClientsPageOptions): Page {
  const rows = o.clients.map(
    (c) => html`<tr>
  <td><a href="${clientPath(c.clientId)}"><code>${c.clientId}</code></a></td>
  <td data-label="Name">${c.name}</td>
  <td data-label="Kind">${c.kind}</td>
  <td data-label="Scopes">${c.scopes.map((s) => html`<code>${s}</code> `)}</td>
  <td data-label="Introspection">${c.mayIntrospect ? 'yes' : 'no'}</td>
  <td data-label="Source">${c.source === 'config' ? 'configuration' : 'registered'}</td>
</tr>`,
  );
  const f = o.create;
  return consolePage(
    o.viewer,
    'clients',
    'Clients',
    html`<h1>Clients</h1>
${notice(o.notice)}
<section aria-labelledby="all-clients">
<h2 id="all-clients">Every client</h2>
${o.clients.length
  ? html`<div class="table-wrap"><table class="stack data">
<thead><tr><th scope="col">Client id</th><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Scopes</th><th scope="col">Introspection</th><th scope="col">Source</th></tr></thead>
<tbody>${rows}</tbody></table></div>`
  : html`<p class="muted">No clients yet.</p>`}
</section>
<section aria-labelledby="register">
<h2 id="register">Register a client</h2>
<p class="muted">As <code>tessera client create</code>: see the clients documentation for what each kind may do.</p>
${formError(f)}
<form method="post" action="/admin/clients" novalidate>
  ${csrfField(o.viewer)}
  ${textField({ form: 'create', name: 'name', label: 'Name', state: f, required: true, autocomplete: 'off' })}
  ${selectField({ form: 'create', name: 'kind', label: 'Kind', state: f, value: 'service', choices: CLIENT_KINDS.map((k) => ({ value: k, label: KIND_LABELS[k] })) })}
  ${textField({ form: 'create', name: 'client_id', label: 'Client id (optional)', state: f, autocomplete: 'off', hint: 'Generated when left empty.' })}
  ${textField({ form: 'create', name: 'scopes', label: 'Scopes (optional)', state: f, autocomplete: 'off', hint: `Separated by spaces; known: ${o.knownScopes.join(', ')}. Empty: read (and offline_access for a device client).` })}
  ${textArea({ form: 'create', name: 'redirect_uris', label: 'Redirect URIs (web clients)', state: f, hint: 'One a line: https, or http for localhost.' })}
  ${selectField({
    form: 'create',
    name: 'default_resource',
    label: 'Default resource',
    state: f,
    value: '',
    choices: [{ value: '', label: `The global default (${o.defaultResource})` }, ...o.resources.map((r) => ({ value: r, label: r }))],
  })}
  ${textField({ form: 'create', name: 'access_token_ttl_seconds', label: 'Access token lifetime in seconds (optional)', type: 'number', state: f, attributes: html` min="60" max="86400" inputmode="numeric"` })}
  ${textArea({ form: 'create', name: 'jwks', label: 'Public keys, a JWK Set (optional)', state: f, rows: 4, hint: 'With keys the client signs assertions (private_key_jwt) and gets no secret.' })}
  <div class="check"><input type="checkbox" id="create-may_introspect" name="may_introspect" value="true"${typed(f, 'may_introspect') === 'true' ? html` checked` : ''}${f?.errors.may_introspect ? html` aria-invalid="true" aria-describedby="create-may_introspect-error"` : ''}>
  <label for="create-may_introspect">May introspect tokens <span class="muted">(service clients; resource servers always may)</span></label></div>
  ${f?.errors.may_introspect ? html`<p class="field-error" id="create-may_introspect-error">${f.errors.may_introspect}</p>` : ''}
  <div class="actions"><button type="submit">Register client</button></div>
</form>
</section>`,
  );
}

export interface ClientPageOptions {
  viewer: Viewer;
  client: Client;
  notice?: string;
  /** A secret made by the change just done, shown this once. */
  secret?: string;
  /** The handle of a secret that was already shown (a reload): say so. */
  secretGone?: boolean;
  keys?: FormState;
  /** The token-exchange form as refused. */
  exchange?: FormState;
}

/** The kinds of credential a token-exchange policy may admit, as the form offers them. */
const EXCHANGE_KINDS: [string, string][] = [
  ['personal_access_token', 'personal access tokens'],
  ['access_token', 'OAuth access tokens (exchanged ones too)'],
  ['session', 'API sessions'],
];

/** The form that sets (or withdraws) a registered confidential client's token-exchange policy. */
function exchangeSection(client: Client, path: string, o: ClientPageOptions) {
  const policy = client.tokenExchange;
  const f = o.exchange;
  const chosen = (kind: string) => (f ? Array.isArray(f.values.subject_token_kinds) && f.values.subject_token_kinds.includes(kind) : (policy?.subjectTokenKinds as string[] | undefined)?.includes(kind) === true);
  const kindsError = f?.errors.subject_token_kinds;
  return html`<section aria-labelledby="token-exchange">
<h2 id="token-exchange">Token exchange</h2>
<p class="muted">Which of a person's credentials it may trade for a short-lived token for one audience, and for at most which scopes (<a href="https://www.rfc-editor.org/rfc/rfc8693">RFC 8693</a>).</p>
${formError(f)}
<form method="post" action="${path}/token-exchange" novalidate>
  ${csrfField(o.viewer)}
  <fieldset${kindsError ? html` aria-describedby="exchange-kinds-error"` : ''}><legend>Credentials it may exchange</legend>
  ${EXCHANGE_KINDS.map(([kind, label]) => html`<div class="check"><input type="checkbox" id="exchange-${kind}" name="subject_token_kinds" value="${kind}"${chosen(kind) ? html` checked` : ''}>
  <label for="exchange-${kind}">${label}</label></div>`)}
  ${kindsError ? html`<p class="field-error" id="exchange-kinds-error">${kindsError}</p>` : ''}
  </fieldset>
  ${textField({ form: 'exchange', name: 'audiences', label: 'Audiences', state: f, value: policy?.audiences.join(' ') ?? '', hint: 'Resources of oauth.resources, separated by spaces.' })}
  ${textField({ form: 'exchange', name: 'scopes', label: 'Scopes', state: f, value: policy?.scopes.join(' ') ?? '', hint: 'The most an exchanged token may hold, separated by spaces.' })}
  <div class="actions"><button type="submit">Save the token-exchange policy${naming(`of ${client.clientId}`)}</button></div>
</form>
${policy
  ? html`<form method="post" action="${path}/token-exchange">
  ${csrfField(o.viewer)}
  <input type="hidden" name="remove" value="yes">
  <button type="submit" class="secondary">Withdraw token exchange${naming(`from ${client.clientId}`)}</button>
</form>`
  : ''}
</section>`;
}

export function clientPage(o: ClientPageOptions): Page {
  const { client } = o;
  const path = clientPath(client.clientId);
  const stored = client.source === 'database';
  return consolePage(
    o.viewer,
    'clients',
    client.name,
    html`<p class="crumbs"><a href="/admin/clients">Clients</a> /</p>
<h1>${client.name}</h1>
${notice(o.notice)}
${o.secret
  ? html`<div class="secret-once">
<p class="notice" role="status">Copy the client secret of <strong>${client.clientId}</strong> now. <strong>It cannot be shown again.</strong></p>
<label for="client-secret">Client secret</label>
<div class="copy-row"><input id="client-secret" class="token-value" type="text" readonly value="${o.secret}"><button type="button" class="secondary" data-copy="client-secret">Copy</button></div>
<p class="muted">Store it like a password. If it is lost, rotate it.</p>
</div>
<script src="/assets/copy.js"></script>`
  : ''}
${o.secretGone ? html`<p class="error" role="alert">That secret was shown once and cannot be shown again. If it was not copied, rotate it to get a new one.</p>` : ''}
<dl class="facts">
  <dt>Client id</dt><dd><code>${client.clientId}</code></dd>
  <dt>Kind</dt><dd>${client.kind}</dd>
  <dt>Authenticates with</dt><dd>${AUTH_METHODS[client.authMethod]}</dd>
  <dt>Scopes</dt><dd>${client.scopes.map((s) => html`<code>${s}</code> `)}</dd>
  ${client.redirectUris.length ? html`<dt>Redirect URIs</dt><dd>${client.redirectUris.map((u) => html`<code class="wrap">${u}</code><br>`)}</dd>` : ''}
  <dt>Default resource</dt><dd>${client.defaultResource ?? html`<span class="muted">the global default</span>`}</dd>
  <dt>Access token lifetime</dt><dd>${client.accessTokenTtlSeconds === null ? html`<span class="muted">the global default</span>` : `${client.accessTokenTtlSeconds} s`}</dd>
  <dt>Introspection</dt><dd>${client.mayIntrospect ? 'may introspect tokens' : 'may not introspect'}</dd>
  <dt>Token exchange</dt><dd>${client.tokenExchange
    ? html`exchanges ${client.tokenExchange.subjectTokenKinds.map((k) => html`<code>${k}</code> `)}for ${client.tokenExchange.audiences.map((a) => html`<code class="wrap">${a}</code> `)}with at most ${client.tokenExchange.scopes.map((s) => html`<code>${s}</code> `)}`
    : html`<span class="muted">may not exchange</span>`}</dd>
  <dt>Source</dt><dd>${stored ? 'registered here' : 'declared in the configuration'}</dd>
  ${stored ? html`<dt>Created</dt><dd>${when(client.createdAt)}</dd><dt>Secret rotated</dt><dd>${when(client.secretRotatedAt)}</dd>` : ''}
  ${client.jwks ? html`<dt>Public keys</dt><dd>${client.jwks.keys.map((k) => html`<code>${k.kid ?? '(no kid)'}</code> ${k.kty} `)}</dd>` : ''}
</dl>
${stored
  ? html`${client.kind === 'service'
      ? html`<section aria-labelledby="introspection">
<h2 id="introspection">Introspection</h2>
<form method="post" action="${path}/introspection">
  ${csrfField(o.viewer)}
  <input type="hidden" name="may_introspect" value="${client.mayIntrospect ? 'false' : 'true'}">
  <button type="submit" class="secondary">${client.mayIntrospect ? 'Withdraw introspection' : 'Grant introspection'}${naming(`${client.mayIntrospect ? 'from' : 'to'} ${client.clientId}`)}</button>
</form>
</section>`
      : ''}
${client.authMethod === 'client_secret_basic'
  ? html`<section aria-labelledby="secret">
<h2 id="secret">Secret</h2>
<p class="muted">A new secret replaces the old one at once; the client's tokens end.</p>
<a class="button secondary" href="${path}/rotate-secret">Rotate the secret${naming(`of ${client.clientId}`)}</a>
</section>`
  : ''}
${client.authMethod === 'private_key_jwt'
  ? html`<section aria-labelledby="keys">
<h2 id="keys">Public keys</h2>
${formError(o.keys)}
<form method="post" action="${path}/jwks" novalidate>
  ${csrfField(o.viewer)}
  ${textArea({ form: 'keys', name: 'jwks', label: 'New JWK Set', state: o.keys, rows: 5, required: true, hint: "Assertions signed by a key not in the new set stop working at once, and the client's tokens end." })}
  <div class="actions"><button type="submit">Replace the keys${naming(`of ${client.clientId}`)}</button></div>
</form>
</section>`
  : ''}
${client.confidential ? exchangeSection(client, path, o) : ''}
<section aria-labelledby="delete-heading">
<h2 id="delete-heading">Delete</h2>
<a class="button danger" href="${path}/delete">Delete${naming(client.clientId)}</a>
</section>`
  : html`<p class="muted">Declared in the configuration: change it there.</p>`}`,
  );
}
