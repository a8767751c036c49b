import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import { AppError, errorBody } from '../shared/errors.ts';

/** Errors body-parser raises, mapped to what a client of a JSON API expects. */
function fromBodyParser(error: { type?: string; status?: number; limit?: number }): AppError | null {
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

/** The one place errors become responses: AppErrors as they say, anything else a bare 500. */
export function errorHandler(): ErrorRequestHandler {
  return (error: unknown, req: Request, res: Response, _next: NextFunction) => {
    let appError = error instanceof AppError ? error : fromBodyParser(error as { type?: string });
    if (!appError) {
      req.log.error({ err: error }, 'unhandled error');
      appError = new AppError(500, 'internal', 'Internal server error.');
    } else if (appError.detail) {
      req.log.warn({ code: appError.code, detail: appError.detail }, appError.message);
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const [name, value] of Object.entries(appError.headers ?? {})) res.setHeader(name, value);
    res.status(appError.status).json(errorBody(appError));
  };
}

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
