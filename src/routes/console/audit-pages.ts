import type { AuditEvent } from '../../audit/audit-log.ts';
import type { Page } from '../../http/pages.ts';
import { html, type SafeHtml } from '../../views/html.ts';
import { consolePage, formError, textField, when, type FormState, type Viewer } from './console-views.ts';

/** What an event's details say, in one line (the audit log never holds a secret). */
function detailsLine(details: Record<string, unknown>): string {
  return Object.entries(details)
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.map((item) => (typeof item === 'object' ? JSON.stringify(item) : String(item))).join(' ') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`)
    .join('; ');
}

/** Usernames of the accounts events name as `user:<id>`, by that party (deleted accounts are absent). */
export type PartyNames = ReadonlyMap<string, string>;

/** A party as the log names it ("user:<id>", "client:<id>", "ip:…", "system"): an account by its username, linked. */
function party(value: string, names: PartyNames): SafeHtml {
  const username = names.get(value);
  if (username) return html`<a href="/admin/users/${encodeURIComponent(value.slice('user:'.length))}">${username}</a>`;
  if (value.startsWith('client:')) return html`<a href="/admin/clients/${encodeURIComponent(value.slice('client:'.length))}"><code>${value}</code></a>`;
  return html`<code>${value}</code>`;
}

/** Audit events, newest first, as a table that stacks on a phone. */
export function auditTable(events: AuditEvent[], names: PartyNames): SafeHtml {
  return html`<div class="table-wrap"><table class="stack data audit">
<thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Who</th><th scope="col">To</th><th scope="col">From</th><th scope="col">Details</th></tr></thead>
<tbody>${events.map(
    (e) => html`<tr><td>${when(e.occurredAt)}</td><td data-label="What"><code>${e.action}</code></td><td data-label="Who">${party(e.actor, names)}</td><td data-label="To">${e.subject ? party(e.subject, names) : html`<span class="muted">—</span>`}</td><td data-label="From">${e.ip ?? '—'}</td><td data-label="Details" class="muted details">${detailsLine(e.details)}</td></tr>`,
  )}</tbody></table></div>`;
}

export const AUDIT_FILTERS = ['user', 'action', 'client', 'since', 'until'] as const;
export type AuditFilterName = (typeof AUDIT_FILTERS)[number];

export interface AuditPageOptions {
  viewer: Viewer;
  /** The filters as typed. */
  filters: Record<AuditFilterName, string>;
  events: AuditEvent[];
  names: PartyNames;
  /** The link to the next (older) page, or null on the last. */
  older: string | null;
  /** Whether this is a later page than the newest. */
  paged: boolean;
  /** The refused filters, when they were. */
  refused?: FormState;
  /** Every event the filters match, as JSON lines. */
  exportHref?: string;
}

export function auditPage(o: AuditPageOptions): Page {
  const state: FormState = o.refused ?? { values: o.filters, errors: {}, message: '' };
  const filtered = Object.values(o.filters).some(Boolean);
  const newest = `/admin/audit${filtered ? `?${new URLSearchParams(Object.entries(o.filters).filter(([, v]) => v)).toString()}` : ''}`;
  return consolePage(
    o.viewer,
    'audit',
    'Audit log',
    html`<h1>Audit log</h1>
<p class="muted">Who did what, to whom, from where: newest first. Times are UTC.</p>
${formError(o.refused)}
<form method="get" action="/admin/audit" novalidate>
  <div class="filters">
    <div>${textField({ form: 'filter', name: 'user', label: 'User', state, hint: 'A username, an e-mail, or a deleted account’s id.', autocomplete: 'off' })}</div>
    <div>${textField({ form: 'filter', name: 'action', label: 'Action', state, hint: 'As user.disabled, or a prefix ending in a dot: sign_in.', autocomplete: 'off' })}</div>
    <div>${textField({ form: 'filter', name: 'client', label: 'Client', state, hint: 'A client id.', autocomplete: 'off' })}</div>
    <div>${textField({ form: 'filter', name: 'since', label: 'From (UTC)', type: 'datetime-local', state })}</div>
    <div>${textField({ form: 'filter', name: 'until', label: 'Before (UTC)', type: 'datetime-local', state })}</div>
  </div>
  <div class="actions"><button type="submit">Show events</button>${filtered ? html`<a class="button secondary" href="/admin/audit">Clear the filters</a>` : ''}</div>
</form>
<section aria-labelledby="events">
<h2 id="events">${filtered ? 'Matching events' : 'Every event'}</h2>
${o.events.length ? auditTable(o.events, o.names) : html`<p class="muted">${o.refused ? 'Correct the filters to see events.' : 'No event matches.'}</p>`}
<nav class="pager" aria-label="Pages of events">
  ${o.paged ? html`<a href="${newest}">Newest events</a>` : ''}
  ${o.older ? html`<a href="${o.older}" rel="next">Older events</a>` : ''}
  ${o.exportHref && o.events.length ? html`<a href="${o.exportHref}" download="audit.jsonl">Download every matching event (JSON lines)</a>` : ''}
</nav>
</section>`,
  );
}
