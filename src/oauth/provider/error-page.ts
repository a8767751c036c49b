import type { KoaContextWithOIDC } from 'oidc-provider';
import { brandingOf, type BrandedResponse } from '../../views/branding.ts';
import { html, layout, pageCspFor } from '../../views/html.ts';

/** The HTML error page of oidc-provider's browser-facing routes: the OAuth error, never internals. */
export async function renderOAuthErrorPage(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }): Promise<void> {
  const branding = brandingOf(ctx.res as BrandedResponse);
  ctx.type = 'html';
  ctx.set('Content-Security-Policy', pageCspFor(branding));
  ctx.set('Cache-Control', 'no-store');
  ctx.body = layout(
    'Sign-in problem',
    html`<h1>Something went wrong</h1>
<p class="error" role="alert">${out.error_description ?? 'The request could not be completed.'}</p>
<p class="muted">Error code: <code>${out.error}</code>. Start again from the application.</p>`,
    { branding },
  );
}
