/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A fragment that is already safe HTML (built from escaped parts). */
export interface SafeHtml {
  readonly html: string;
}

/** Tagged template: interpolated values are escaped unless they are SafeHtml (or arrays of it). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((value, index) => {
    out += render(value) + strings[index + 1]!;
  });
  return { html: out };
}

function render(value: unknown): string {
  if (Array.isArray(value)) return value.map(render).join('');
  if (value && typeof value === 'object' && 'html' in value) return (value as SafeHtml).html;
  if (value === false || value === null || value === undefined) return '';
  return escapeHtml(value);
}

/**
 * The Content-Security-Policy of every HTML page: nothing external, no inline script or style.
 * (oidc-provider appends the hash of its one auto-submit script to script-src where it needs it.)
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const STYLESHEET_PATH = '/assets/tessera.css';

/** The page shell: one stylesheet from Tessera itself, readable on a phone. */
export function layout(title: string, body: SafeHtml, options: { wide?: boolean } = {}): string {
  return html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · Tessera</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${STYLESHEET_PATH}">
</head>
<body>
<header class="bar"><span class="brand">Tessera</span></header>
<main class="card${options.wide ? ' wide' : ''}">
${body}
</main>
</body>
</html>`.html;
}
