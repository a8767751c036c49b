import type { RequestHandler } from 'express';
import { AppError, OAuthError } from '../shared/errors.ts';

// Middleware that refuses a request before any route's work: no such route, another method, a
// body that is not JSON. The refusals are AppErrors, answered by error-response.ts.

export function notFound(): RequestHandler {
  return (req, _res, next) => next(new AppError(404, 'no_route', `No route for ${req.method} ${req.path}.`));
}

/** The value of an Allow header for `methods` (HEAD wherever GET is). */
export function allowHeader(methods: readonly string[]): string {
  return [...new Set([...methods, ...(methods.includes('GET') ? ['HEAD'] : [])])].join(', ');
}

/** 405 with Allow, in the JSON error shape. */
export function notAllowedError(method: string, allowed: readonly string[]): AppError {
  const allow = allowHeader(allowed);
  return new AppError(405, 'method_not_allowed', `${method} is not allowed here. Allowed: ${allow}.`, { headers: { Allow: allow } });
}

/** 405 with Allow at an OAuth endpoint, in RFC 6749's error shape. */
export function oauthNotAllowedError(method: string, allowed: readonly string[]): OAuthError {
  const allow = allowHeader(allowed);
  return new OAuthError(405, 'invalid_request', `${method} is not allowed here; use ${allow}`, { headers: { Allow: allow } });
}

/** Answers 405 with an Allow header for a path that exists but not with this method. */
export function methodNotAllowed(allowed: string[]): RequestHandler {
  return (req, _res, next) => next(notAllowedError(req.method, allowed));
}

/** For JSON endpoints that take a body: anything but application/json is 415. */
export function requireJsonBody(): RequestHandler {
  return (req, _res, next) => {
    const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
    if (hasBody && !req.is('application/json')) {
      next(new AppError(415, 'unsupported_media_type', 'This endpoint accepts only application/json.'));
      return;
    }
    next();
  };
}
