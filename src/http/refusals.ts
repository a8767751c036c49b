import type { RequestHandler } from 'express';
import { AppError } from '../shared/errors.ts';

// Middleware that refuses a request before any route's work: no such route, another method, a
// body that is not JSON. The refusals are AppErrors, answered by error-response.ts.

export function notFound(): RequestHandler {
  return (req, _res, next) => next(AppError.notFound(`No route for ${req.method} ${req.path}.`));
}

/** Answers 405 with an Allow header for a path that exists but not with this method. */
export function methodNotAllowed(allowed: string[]): RequestHandler {
  const allow = [...new Set([...allowed, ...(allowed.includes('GET') ? ['HEAD'] : [])])].join(', ');
  return (req, _res, next) => next(new AppError(405, 'method_not_allowed', `${req.method} is not allowed here. Allowed: ${allow}.`, { headers: { Allow: allow } }));
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
