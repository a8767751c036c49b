import type { ServerResponse } from 'node:http';
import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { AppError, OAuthError, type FieldError } from '../shared/errors.ts';
import { sendJson } from './raw-http.ts';

// The one place errors become responses, on express and on node:http alike: an AppError in
// Tessera's JSON shape, an OAuthError in RFC 6749's, anything else a 500 that tells the client
// nothing and the log everything.

/** An error as it is answered, whatever writes it. */
export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: ErrorBody | OAuthErrorBody;
}

/** The JSON error body every non-OAuth endpoint answers with. */
export interface ErrorBody {
  message: string;
  status: number;
  errors?: FieldError[];
}

export interface OAuthErrorBody {
  error: string;
  error_description?: string;
}

/** What express answers anything unexpected with. */
const INTERNAL = new AppError(500, 'internal', 'Internal server error.');
/** What an OAuth endpoint answers anything unexpected with (oidc-provider's words). */
export const SERVER_ERROR = new OAuthError(500, 'server_error', 'oops! something went wrong');
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

/** Logs what only the log may see: a known error's detail (warn), anything else whole (error). */
function logged(error: unknown, log: Logger, failure: string): AppError | OAuthError | null {
  const known = error instanceof AppError || error instanceof OAuthError ? error : (fromBodyParser((error ?? {}) as { type?: string }) ?? fromUnreadableRequest(error));
  if (!known) log.error({ err: error }, failure);
  else if (known.detail) log.warn(known instanceof AppError ? { code: known.code, detail: known.detail } : { error: known.error, detail: known.detail }, known.message);
  return known;
}

/** express's error handler, last in the app: every route's errors are answered here. */
export function errorHandler(): ErrorRequestHandler {
  return (error: unknown, req, res: Response, _next) => {
    const answer = errorAnswer(logged(error, req.log, 'unhandled error') ?? INTERNAL);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
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
 * The error of an OAuth endpoint on node:http: an OAuthError as it says, anything else `fallback`.
 * Returns the OAuthError sent; refusals are the endpoint's to log.
 */
export function sendRawError(res: ServerResponse, error: unknown, context: RawErrorContext): OAuthError {
  const sent = error instanceof OAuthError ? error : (context.fallback ?? SERVER_ERROR);
  if (sent !== error) context.logger.error({ reqId: context.requestId, err: error }, context.failure);
  const answer = errorAnswer(sent);
  sendJson(res, answer.status, answer.body, { ...context.headers, ...answer.headers, 'X-Request-Id': context.requestId });
  return sent;
}
