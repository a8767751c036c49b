// What every page of the admin console shares: its navigation, dates, notices, and form fields
// that keep what was typed and say, next to the field, why it was refused.
import type { AppError } from '../../shared/errors.ts';
import { html, type SafeHtml } from '../../views/html.ts';
import type { Page } from '../../http/pages.ts';

export type ConsoleSection = 'overview' | 'users' | 'clients' | 'keys' | 'audit';

/** Who is looking at the page, and the CSRF token of its forms. */
export interface Viewer {
  username: string;
  userId: string;
  csrf: string;
}

const SECTIONS: { section: ConsoleSection; href: string; label: string }[] = [
  { section: 'overview', href: '/admin', label: 'Overview' },
  { section: 'users', href: '/admin/users', label: 'Users' },
  { section: 'clients', href: '/admin/clients', label: 'Clients' },
  { section: 'keys', href: '/admin/keys', label: 'Signing keys' },
  { section: 'audit', href: '/admin/audit', label: 'Audit log' },
];

export function consoleNav(viewer: Viewer, current: ConsoleSection): SafeHtml {
  return html`<nav class="tabs" aria-label="Administration">
  ${SECTIONS.map((s) => html`<a href="${s.href}"${s.section === current ? html` aria-current="page"` : ''}>${s.label}</a>`)}
  <a href="/settings/tokens">Your settings</a>
  <form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit" class="link">Sign out ${viewer.username}</button></form>
</nav>`;
}

/** A console page: the navigation, then the body. */
export function consolePage(viewer: Viewer, current: ConsoleSection, title: string, body: SafeHtml): Page {
  return { title: `${title} · Administration`, body: html`${consoleNav(viewer, current)}${body}`, wide: true };
}

export const csrfField = (viewer: Viewer) => html`<input type="hidden" name="csrf" value="${viewer.csrf}">`;

export const when = (value: Date | null | undefined) =>
  value ? html`<time datetime="${value.toISOString()}">${value.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>` : html`<span class="muted">—</span>`;

export const notice = (text: string | undefined) => (text ? html`<p class="notice" role="status">${text}</p>` : '');

/** "1 session", "2 sessions". */
export const counted = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;

/** Visually hidden words that tell a screen reader what a button acts on ("Disable" … "carol"). */
export const naming = (what: string) => html`<span class="visually-hidden"> ${what}</span>`;

/** A form that was refused: what was typed, and what is wrong with which field. */
export interface FormState {
  values: Record<string, string | string[]>;
  errors: Record<string, string>;
  /** The refusal as a whole (a conflict, or a problem no field of the form explains). */
  message: string;
}

/**
 * A service's refusal (400 or 409 with field errors) as a form's state: each field error goes to
 * the form field `fieldOf` maps its service name to (the first segment: `scopes.2` is `scopes`).
 */
export function refusedForm(error: AppError, values: FormState['values'], fieldOf: (serviceField: string) => string | undefined): FormState {
  const errors: Record<string, string> = {};
  const unplaced: string[] = [];
  for (const e of error.errors ?? []) {
    const field = fieldOf(e.field.split('.')[0]!);
    if (field) errors[field] = errors[field] ? `${errors[field]}; ${e.message}` : e.message;
    else unplaced.push(`${e.field}: ${e.message}`);
  }
  const message = error.code === 'validation_failed' ? 'Nothing was changed: check the fields marked below.' : error.message;
  return { values, errors, message: [message, ...unplaced].join(' ') };
}

export const formError = (state: FormState | undefined) => (state ? html`<p class="error" role="alert">${state.message}</p>` : '');

/** The value typed before a refusal, or `fallback`. */
export function typed(state: FormState | undefined, name: string, fallback = ''): string {
  const value = state?.values[name];
  return typeof value === 'string' ? value : fallback;
}

/** aria-invalid and aria-describedby (the hint, then the refusal) of a field, and the refusal's message. */
function described(id: string, hint: string | undefined, error: string | undefined): { attributes: SafeHtml; hint: SafeHtml | ''; message: SafeHtml | '' } {
  const ids = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return {
    attributes: html`${error ? html` aria-invalid="true"` : ''}${ids ? html` aria-describedby="${ids}"` : ''}`,
    hint: hint ? html`<p class="muted hint" id="${id}-hint">${hint}</p>` : '',
    message: error ? html`<p class="field-error" id="${id}-error">${error}</p>` : '',
  };
}

export interface TextFieldOptions {
  /** The form's prefix for ids, so that several forms on one page never share one. */
  form: string;
  name: string;
  label: string;
  state: FormState | undefined;
  value?: string;
  type?: 'text' | 'email' | 'password' | 'number' | 'datetime-local';
  autocomplete?: string;
  required?: boolean;
  hint?: string;
  attributes?: SafeHtml;
}

export function textField(o: TextFieldOptions): SafeHtml {
  const id = `${o.form}-${o.name}`;
  const d = described(id, o.hint, o.state?.errors[o.name]);
  // A password is never sent back to the browser, refused or not.
  const value = o.type === 'password' ? '' : typed(o.state, o.name, o.value ?? '');
  return html`<label for="${id}">${o.label}</label>
${d.hint}<input id="${id}" name="${o.name}" type="${o.type ?? 'text'}" value="${value}"${o.autocomplete ? html` autocomplete="${o.autocomplete}"` : ''}${o.required ? html` required` : ''}${d.attributes}${o.attributes ?? ''}>
${d.message}`;
}

export function textArea(o: Omit<TextFieldOptions, 'type' | 'autocomplete'> & { rows?: number }): SafeHtml {
  const id = `${o.form}-${o.name}`;
  const d = described(id, o.hint, o.state?.errors[o.name]);
  return html`<label for="${id}">${o.label}</label>
${d.hint}<textarea id="${id}" name="${o.name}" rows="${o.rows ?? 3}"${o.required ? html` required` : ''}${d.attributes}>${typed(o.state, o.name, o.value ?? '')}</textarea>
${d.message}`;
}

/** A select of `choices`; the typed (or given) value is selected. */
export function selectField(o: { form: string; name: string; label: string; state: FormState | undefined; value?: string; hint?: string; choices: { value: string; label: string }[] }): SafeHtml {
  const id = `${o.form}-${o.name}`;
  const d = described(id, o.hint, o.state?.errors[o.name]);
  const selected = typed(o.state, o.name, o.value ?? '');
  return html`<label for="${id}">${o.label}</label>
${d.hint}<select id="${id}" name="${o.name}"${d.attributes}>
  ${o.choices.map((c) => html`<option value="${c.value}"${c.value === selected ? html` selected` : ''}>${c.label}</option>`)}
</select>
${d.message}`;
}

/** Checkboxes named `name`, one per choice, in a fieldset that carries the field's refusal. */
export function checkboxes(o: { form: string; name: string; legend: string; state: FormState | undefined; choices: { value: string; description: string }[]; checked: string[] }): SafeHtml {
  const id = `${o.form}-${o.name}`;
  const error = o.state?.errors[o.name];
  const typedValues = o.state?.values[o.name];
  const checked = new Set(o.state ? (Array.isArray(typedValues) ? typedValues : typedValues ? [typedValues] : []) : o.checked);
  return html`<fieldset${error ? html` aria-describedby="${id}-error"` : ''}>
  <legend>${o.legend}</legend>
  ${o.choices.map(
    (c) => html`<div class="check"><input type="checkbox" id="${id}-${c.value}" name="${o.name}" value="${c.value}"${checked.has(c.value) ? html` checked` : ''}${error ? html` aria-invalid="true"` : ''}>
  <label for="${id}-${c.value}"><code>${c.value}</code> <span class="muted">${c.description}</span></label></div>`,
  )}
  ${error ? html`<p class="field-error" id="${id}-error">${error}</p>` : ''}
</fieldset>`;
}

/** A form's field values as sent: text fields as strings, repeated fields (checkboxes) as lists. */
export function formValues(body: unknown, lists: string[] = []): Record<string, string | string[]> {
  const values: Record<string, string | string[]> = {};
  const record = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  for (const [name, value] of Object.entries(record)) {
    if (name === 'csrf') continue;
    if (lists.includes(name)) values[name] = Array.isArray(value) ? value.map(String) : typeof value === 'string' && value ? [value] : [];
    else values[name] = Array.isArray(value) ? String(value[0] ?? '') : typeof value === 'string' ? value : '';
  }
  for (const name of lists) values[name] ??= [];
  return values;
}

export const text = (values: FormState['values'], name: string) => {
  const value = values[name];
  return typeof value === 'string' ? value : '';
};
export const list = (values: FormState['values'], name: string) => {
  const value = values[name];
  return Array.isArray(value) ? value : [];
};

/** A confirmation step for what cannot be undone: works without JavaScript. */
export function confirmPage(o: { viewer: Viewer; section: ConsoleSection; title: string; explanation: SafeHtml; action: string; button: string; cancel: string }): Page {
  return consolePage(
    o.viewer,
    o.section,
    o.title,
    html`<h1>${o.title}</h1>
${o.explanation}
<form method="post" action="${o.action}">
  ${csrfField(o.viewer)}
  <div class="actions"><button type="submit" class="danger">${o.button}</button><a class="button secondary" href="${o.cancel}">Cancel</a></div>
</form>`,
  );
}
