import type { Response } from 'express';
import { layout, PAGE_CSP, type SafeHtml } from '../views/html.ts';

/** A server-rendered page: what goes into the one layout (views/html.ts). */
export interface Page {
  title: string;
  body: SafeHtml;
  wide?: boolean;
}

/** Sends a page with the page policy (nothing external, no inline script), never cached. */
export function sendPage(res: Response, status: number, page: Page): void {
  res
    .status(status)
    .set('Content-Security-Policy', PAGE_CSP)
    .set('Cache-Control', 'no-store')
    .type('html')
    .send(layout(page.title, page.body, page.wide ? { wide: true } : {}));
}
