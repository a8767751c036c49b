import { BRAND_STYLESHEET_PATH, brandFooter, brandHeader, DEFAULT_BRANDING, logoOrigin, type Branding } from './branding.ts';

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
 * A logo on another site (branding.logoUrl) is the one thing loaded from elsewhere: pageCsp.
 */
export const PAGE_CSP = pageCsp(null);

/** The page policy, with img-src allowing the origin of the operator's logo when it is elsewhere. */
export function pageCsp(logoOrigin: string | null): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' data:${logoOrigin ? ` ${logoOrigin}` : ''}`,
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
}

/** The page policy for a branding (its logo's origin in img-src, when the logo is elsewhere). */
export function pageCspFor(branding: Branding): string {
  return pageCsp(logoOrigin(branding));
}

export const STYLESHEET_PATH = '/assets/tessera.css';

/** The page shell: the one stylesheet and the brand's, from Tessera itself, readable on a phone. */
export function layout(title: string, body: SafeHtml, options: { wide?: boolean; branding?: Branding } = {}): string {
  const branding = options.branding ?? DEFAULT_BRANDING;
  return html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · ${branding.productName}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${STYLESHEET_PATH}">
${branding.primaryColor || branding.accentColor ? html`<link rel="stylesheet" href="${BRAND_STYLESHEET_PATH}">` : ''}
</head>
<body>
${brandHeader(branding)}
<main class="card${options.wide ? ' wide' : ''}">
${body}
</main>
${brandFooter(branding)}
</body>
</html>`.html;
}
