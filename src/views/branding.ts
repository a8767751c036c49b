import { html, type SafeHtml } from './html.ts';

// The operator's branding (config `branding`, docs/branding.md): the product people sign in to,
// its logo, its colours and where to get help. Every page's title, header and footer come from
// it, and /assets/brand.css sets its colours over the one stylesheet.

export interface Branding {
  productName: string;
  /** An https: URL, or a path on this site (`/assets/logo` when `logoFile` is served). */
  logoUrl?: string | undefined;
  /** Buttons, links and the current tab (#rrggbb, at least 4.5:1 against white). */
  primaryColor?: string | undefined;
  /** The line under the header (decorative). */
  accentColor?: string | undefined;
  supportUrl?: string | undefined;
  supportEmail?: string | undefined;
}

export const DEFAULT_BRANDING: Branding = { productName: 'Tessera' };

/** Where Tessera serves a logo file of the operator's (config branding.logoFile). */
export const LOGO_PATH = '/assets/logo';
export const BRAND_STYLESHEET_PATH = '/assets/brand.css';

/** The relative luminance of a #rrggbb colour (WCAG 2.1). */
export function luminance(hex: string): number {
  const channel = (offset: number) => {
    const value = parseInt(hex.slice(offset, offset + 2), 16) / 255;
    return value <= 0.04045 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
}

/** The contrast ratio of two #rrggbb colours (1 to 21). */
export function contrastRatio(a: string, b: string): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (light + 0.05) / (dark + 0.05);
}

/** `hex` mixed with black: the hover shade of a button. */
function darker(hex: string, keep = 0.8): string {
  const part = (offset: number) => Math.round(parseInt(hex.slice(offset, offset + 2), 16) * keep).toString(16).padStart(2, '0');
  return `#${part(1)}${part(3)}${part(5)}`;
}

/** The brand stylesheet: the operator's colours as the stylesheet's variables (empty without). */
export function brandStylesheet(branding: Branding): string {
  const rules: string[] = [];
  if (branding.primaryColor) rules.push(`:root { --accent: ${branding.primaryColor}; --accent-dark: ${darker(branding.primaryColor)}; }`);
  if (branding.accentColor) rules.push(`.bar { border-bottom: 4px solid ${branding.accentColor}; }`);
  return `${rules.join('\n')}\n`;
}

/** The origin a logo on another site is loaded from (for img-src), or null for a same-site logo. */
export function logoOrigin(branding: Branding): string | null {
  if (!branding.logoUrl || branding.logoUrl.startsWith('/')) return null;
  return new URL(branding.logoUrl).origin;
}

/** The page header: the logo (decorative: the name follows it) and the product's name. */
export function brandHeader(branding: Branding): SafeHtml {
  return html`<header class="bar"><a class="brand" href="/">${branding.logoUrl ? html`<img class="logo" src="${branding.logoUrl}" alt="" height="28">` : ''}<span>${branding.productName}</span></a></header>`;
}

/** The page footer: where to get help, and the API reference. */
export function brandFooter(branding: Branding): SafeHtml {
  const help = [
    branding.supportUrl ? html`<a href="${branding.supportUrl}">Help and support</a>` : '',
    branding.supportEmail ? html`<a href="mailto:${branding.supportEmail}">${branding.supportEmail}</a>` : '',
  ].filter(Boolean);
  return html`<footer class="foot"><nav aria-label="Help">${help.length ? html`${help.map((link, i) => html`${i ? ' · ' : ''}${link}`)} · ` : ''}<a href="/docs/api">API reference</a></nav></footer>`;
}

/** What holds the branding: an express response, whose app keeps it in its locals. */
export interface BrandedResponse {
  app?: { locals?: Record<string, unknown> };
}

/**
 * The operator's branding, which createApp keeps in the app's locals (set once, from the
 * configuration): every response that went through the app finds it, oidc-provider's pages too
 * (they are rendered on the same response object).
 */
export function brandingOf(res: BrandedResponse): Branding {
  return (res.app?.locals?.branding as Branding | undefined) ?? DEFAULT_BRANDING;
}
