import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { AppError, OAuthError, STORE_RETRY_AFTER_SECONDS, storeUnavailableCause, type FieldError } from '../shared/errors.ts';
import { brandingOf } from '../views/branding.ts';
import { errorPage, prefersHtml } from './error-pages.ts';
import { sendPage } from './pages.ts';
import { sendJson } from './raw-http.ts';

// The one place errors become responses, on express and on node:http alike: an AppError in
// Tessera's JSON shape, an OAuthError in RFC 6749's, a store that is unreachable 503 with
// Retry-After in either, anything else a 500 that tells the client nothing and the log
// everything. A browser gets a page instead of JSON (error-pages.ts).

/** An error as it is answered, whatever writes it. */
export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: ErrorBody | OAuthErrorBody;
}

/** One field's problem (shared/errors.ts FieldError), as the error body lists it. */
export const fieldErrorSchema = z.object({
  field: z.string().meta({ description: 'The field, as the client sent it (`scopes.1` for an element of a list; `(body)` for the body as a whole).' }),
  code: z.string().meta({ description: 'What is wrong, for programs: `required`, `invalid_type`, `too_small`, `not_allowed`, `custom`, …' }),
  message: z.string().meta({ description: 'What is wrong, for people.' }),
}) satisfies z.ZodType<FieldError>;

/** The JSON error body every non-OAuth endpoint answers with (and /openapi.json describes). */
export const errorBodySchema = z
  .object({
    message: z.string().meta({ description: 'What went wrong, for people; never internals.' }),
    status: z.number().int().meta({ description: 'The HTTP status, repeated.' }),
    errors: z.array(fieldErrorSchema).optional().meta({ description: 'Only for validation failures: every bad field.' }),
  })
  .meta({ description: "Tessera's error body (docs/http-api.md#errors)." });
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** RFC 6749 §5.2's error body, which the OAuth endpoints answer with. */
export const oauthErrorBodySchema = z
  .object({
    error: z.string().meta({ description: 'The RFC 6749 error code: `invalid_request`, `invalid_token`, `temporarily_unavailable`, …' }),
    error_description: z.string().optional(),
  })
  .meta({ description: 'An OAuth error (RFC 6749 §5.2).' });
export type OAuthErrorBody = z.infer<typeof oauthErrorBodySchema>;

/** What express answers anything unexpected with. */
const INTERNAL = new AppError(500, 'internal', 'Internal server error.');
/** What an OAuth endpoint answers anything unexpected with (oidc-provider's words). */
export const SERVER_ERROR = new OAuthError(500, 'server_error', 'oops! something went wrong');
const RETRY_LATER = { 'Retry-After': String(STORE_RETRY_AFTER_SECONDS) };
/** What express answers while a store is unreachable (StoreUnavailableError). */
export const STORE_UNAVAILABLE = new AppError(503, 'unavailable', 'The service is temporarily unavailable. Try again shortly.', { headers: RETRY_LATER });
/** What an OAuth endpoint answers while a store is unreachable (RFC 6749 §4.1.2.1's code). */
export const TEMPORARILY_UNAVAILABLE = new OAuthError(503, 'temporarily_unavailable', 'the service is temporarily unavailable; try again shortly', { headers: RETRY_LATER });
/** RFC 6749 §5.1: OAuth answers are never cached. */
const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

export function errorAnswer(error: AppError | OAuthError): ErrorAnswer {
  if (error instanceof OAuthError) {
    const body = error.message ? { error: error.error, error_description: error.message } : { error: error.error };
    return { status: error.status, headers: { ...NO_STORE, ...error.headers }, body };
  }
  const body = error.errors?.length ? { message: error.message, status: error.status, errors: error.errors } : { message: error.message, status: error.status };
  return { status: error.status, headers: { ...error.headers }, body };
}

/** Errors body-parser raises, mapped to what a client of a JSON API expects. */
function fromBodyParser(error: { type?: string; limit?: number }): AppError | null {
  switch (error.type) {
    case 'entity.too.large':
      return new AppError(413, 'payload_too_large', `Request body too large (limit ${error.limit} bytes).`);
    case 'entity.parse.failed':
      return AppError.badRequest('Request body is not valid JSON.');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError(415, 'unsupported_media_type', 'Unsupported body encoding or charset.');
    case 'request.aborted':
      return new AppError(400, 'aborted', 'Request aborted.');
    default:
      return null;
  }
}

/**
 * Other requests express's router and body parsers cannot read: they mark them with a 4xx status
 * (bad percent-encoding in a path parameter, a body that does not match its Content-Encoding).
 */
function fromUnreadableRequest(error: unknown): AppError | null {
  const status = (error as { status?: unknown } | null)?.status;
  if (!(error instanceof Error) || typeof status !== 'number' || status < 400 || status > 499) return null;
  if (error instanceof URIError) return AppError.badRequest('The URL holds malformed percent-encoding.');
  return new AppError(status, 'bad_request', status === 400 ? 'The request body could not be decoded.' : 'The request could not be read.', { detail: error.message });
}

/**
 * Logs what only the log may see: a known error's detail (warn), anything else whole (error; a
 * store outage too, which the logger reports once per interval with a count: shared/repeated-failures.ts).
 */
function logged(error: unknown, log: Logger, failure: string): AppError | OAuthError | null {
  const known = error instanceof AppError || error instanceof OAuthError ? error : (fromBodyParser((error ?? {}) as { type?: string }) ?? fromUnreadableRequest(error));
  if (!known && storeUnavailableCause(error)) {
    log.error({ err: error }, 'a store is unavailable');
    return STORE_UNAVAILABLE;
  }
  if (!known) log.error({ err: error }, failure);
  else if (known.detail) log.warn(known instanceof AppError ? { code: known.code, detail: known.detail } : { error: known.error, detail: known.detail }, known.message);
  return known;
}

/**
 * Marks the request as one of the browser's pages: a store outage is answered with a page
 * (errorHandler). Its other refusals keep the JSON shape or are pages of the route's own.
 */
export function answerOutagesWithPages(res: Response): void {
  res.locals.outagesAsPages = true;
}

/**
 * Marks the request as one of the admin console's pages: every refusal (403, 404, 409, a store
 * outage, a failure) is answered as a page with the error's status and message, never as JSON.
 */
export function answerErrorsWithPages(res: Response): void {
  res.locals.outagesAsPages = true;
  res.locals.errorsAsPages = true;
}

/** express's error handler, last in the app: every route's errors are answered here. */
export function errorHandler(): ErrorRequestHandler {
  return (error: unknown, req, res: Response, _next) => {
    const known = logged(error, req.log, 'unhandled error') ?? INTERNAL;
    const answer = errorAnswer(known);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
    // A browser (Accept preferring text/html) gets every error as a page; so do the pages that
    // asked for it whatever the Accept (the console: every refusal; other pages: an outage).
    // Every other client keeps the JSON error shape.
    // An OAuth endpoint's refusal reaches a browser as a page too (its description is the message).
    const shown = known instanceof OAuthError ? new AppError(known.status, known.error, known.message, known.headers ? { headers: known.headers } : {}) : known;
    const asPage = prefersHtml(req) || (known instanceof AppError && (res.locals.errorsAsPages || (res.locals.outagesAsPages && known === STORE_UNAVAILABLE)));
    if (asPage) {
      const links = res.locals.errorsAsPages ? [{ href: '/admin', label: 'Administration' }, { href: '/settings/tokens', label: 'Your settings' }] : [];
      sendPage(res, answer.status, errorPage(shown, { branding: brandingOf(res), requestId: req.id, links }));
      return;
    }
    res.status(answer.status).json(answer.body);
  };
}

export interface RawErrorContext {
  requestId: string;
  logger: Logger;
  /** The headers every answer of the endpoint carries; the error's own and X-Request-Id follow. */
  headers: Record<string, string>;
  /** The log line of an unexpected error. */
  failure: string;
  /** What an unexpected error answers (SERVER_ERROR unless the endpoint says otherwise). */
  fallback?: OAuthError;
}

/**
 * The error of an OAuth endpoint on node:http: an OAuthError as it says, a store outage
 * TEMPORARILY_UNAVAILABLE, anything else `fallback`. Returns the OAuthError sent; refusals are
 * the endpoint's to log.
 */
export function sendRawError(res: ServerResponse, error: unknown, context: RawErrorContext): OAuthError {
  const outage = !(error instanceof OAuthError) && storeUnavailableCause(error) !== undefined;
  const sent = error instanceof OAuthError ? error : outage ? TEMPORARILY_UNAVAILABLE : (context.fallback ?? SERVER_ERROR);
  if (sent !== error) context.logger.error({ reqId: context.requestId, err: error }, outage ? 'a store is unavailable' : context.failure);
  const answer = errorAnswer(sent);
  sendJson(res, answer.status, answer.body, { ...context.headers, ...answer.headers, 'X-Request-Id': context.requestId });
  return sent;
}
