import type { Request } from 'express';
import type { AppError } from '../shared/errors.ts';
import type { Branding } from '../views/branding.ts';
import { html, type SafeHtml } from '../views/html.ts';
import type { Page } from './pages.ts';

// The one renderer of errors as pages, for browsers (a request whose Accept prefers text/html)
// and for the pages that answer every refusal as a page (the admin console): a heading and a
// sentence a person can act on for each status, the error's own message where it says more,
// and a way on. Never internals: a 5xx shows only its reference, the request id, which the log
// line carries too.

/** Whether the client prefers a page to JSON: a browser's navigation or form post. */
export function prefersHtml(req: Request): boolean {
  return req.accepts(['application/json', 'text/html']) === 'text/html';
}

export interface ErrorPageContext {
  branding: Branding;
  requestId: string;
  /** Links on, besides the start page (the console adds its own). */
  links?: { href: string; label: string }[];
}

interface Words {
  title: string;
  /** What happened and what to do, in one or two sentences. */
  lead: string;
  /** Whether the error's own message adds something worth showing. */
  ownMessage: boolean;
}

/** "in 1 second", "in 3 minutes": a Retry-After in words. */
export function inWords(seconds: number): string {
  if (seconds < 90) return `in ${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `in ${minutes} minute${minutes === 1 ? '' : 's'}`;
}

function wordsFor(error: AppError): Words {
  const retryAfter = Number(error.headers?.['Retry-After']);
  const retry = Number.isFinite(retryAfter) && retryAfter > 0 ? `Try again ${inWords(retryAfter)}.` : 'Try again in a moment.';
  switch (error.status) {
    case 400:
      return { title: 'The request could not be used', lead: 'Something in what was sent is not right.', ownMessage: true };
    case 401:
      return { title: 'Sign in first', lead: 'This needs you to be signed in.', ownMessage: false };
    case 403:
      return error.code === 'csrf'
        ? { title: 'This form has expired', lead: 'The form has expired (it was open a long time, or you signed in again since) or did not come from this site, so nothing was changed. Go back, reload the page and try again.', ownMessage: false }
        : { title: 'Not allowed', lead: 'You may not do this with the account you are signed in with.', ownMessage: true };
    case 404:
      return { title: 'Page not found', lead: 'There is nothing at this address. It may have been mistyped, or what it showed is gone.', ownMessage: error.code !== 'no_route' };
    case 405:
      return { title: 'Not available this way', lead: 'This address exists, but not for this kind of request. Go back and use the page’s own links and buttons.', ownMessage: false };
    case 409:
      return { title: 'Not done', lead: 'This conflicts with something that already exists.', ownMessage: true };
    case 413:
      return { title: 'Too much to send', lead: 'What was sent is larger than this service accepts. Shorten it and try again.', ownMessage: false };
    case 415:
      return { title: 'The request could not be used', lead: 'What was sent is in a form this address does not take.', ownMessage: false };
    case 429:
      return { title: 'Too many requests', lead: `There were too many requests from you in a short time. ${retry}`, ownMessage: false };
    case 503:
      return { title: 'Temporarily unavailable', lead: `The service is temporarily unavailable. Nothing you did caused it. ${retry}`, ownMessage: false };
    default:
      return error.status >= 500
        ? { title: 'Something went wrong', lead: 'Something went wrong on our side, and what you asked for was not done. Try again later.', ownMessage: false }
        : { title: 'Not done', lead: 'The request was refused.', ownMessage: true };
  }
}

/** A refusal or failure as a page: what happened, what to do, and where to go from here. */
export function errorPage(error: AppError, context: ErrorPageContext): Page {
  const { title, lead, ownMessage } = wordsFor(error);
  const { branding } = context;
  const support: SafeHtml | '' = branding.supportUrl
    ? html` If it keeps happening, <a href="${branding.supportUrl}">contact support</a>.`
    : branding.supportEmail
      ? html` If it keeps happening, write to <a href="mailto:${branding.supportEmail}">${branding.supportEmail}</a>.`
      : '';
  const links = [
    ...(error.status === 401 ? [{ href: '/login', label: 'Sign in' }] : []),
    ...(context.links ?? []),
    { href: '/', label: `${branding.productName} start page` },
  ];
  return {
    title,
    body: html`<h1>${title}</h1>
${ownMessage && error.message ? html`<p class="error" role="alert">${error.message}</p>
<p>${lead}</p>` : html`<p class="error" role="alert">${lead}</p>`}
${error.errors?.length ? html`<ul>${error.errors.map((e) => html`<li><code>${e.field}</code> ${e.message}</li>`)}</ul>` : ''}
${error.status >= 500 ? html`<p class="muted">Reference: <code>${context.requestId}</code>.${support}</p>` : ''}
<nav aria-label="Ways on"><ul class="ways">${links.map((link) => html`<li><a href="${link.href}">${link.label}</a></li>`)}</ul></nav>`,
  };
}
