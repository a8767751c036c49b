import type { Response } from 'express';
import { brandingOf } from '../views/branding.ts';
import { layout, pageCspFor, type SafeHtml } from '../views/html.ts';

/** A server-rendered page: what goes into the one layout (views/html.ts). */
export interface Page {
  title: string;
  body: SafeHtml;
  wide?: boolean;
}

/**
 * Sends a page in the operator's branding (views/branding.ts) with the page policy (nothing
 * external but a configured logo, no inline script), never cached.
 */
export function sendPage(res: Response, status: number, page: Page): void {
  const branding = brandingOf(res);
  res
    .status(status)
    .set('Content-Security-Policy', pageCspFor(branding))
    .set('Cache-Control', 'no-store')
    .type('html')
    .send(layout(page.title, page.body, { ...(page.wide ? { wide: true } : {}), branding }));
}
