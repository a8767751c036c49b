import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { loggableUrl } from '../shared/logger.ts';
import { requestIdOf } from './raw-http.ts';

declare module 'express-serve-static-core' {
  interface Request {
    /** The request id: the caller's X-Request-Id when it looks sane, otherwise a new UUID. */
    id: string;
    log: Logger;
  }
}

/**
 * Gives each request an id (echoed in X-Request-Id) and a child logger, and logs one line when
 * the response ends. The line carries no headers, no body and no query values: the path and the
 * query's parameter names only.
 */
export function requestContext(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    req.id = requestIdOf(req);
    req.log = logger.child({ reqId: req.id });
    res.setHeader('X-Request-Id', req.id);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const line = {
        method: req.method,
        url: loggableUrl(req.originalUrl),
        status: res.statusCode,
        ms: Math.round(ms * 10) / 10,
        ip: req.ip,
        userAgent: req.get('user-agent'),
      };
      // A 503 is an answer (a store is away, or hashing is saturated): its cause is logged once
      // per interval where it is met, so the access line is a warning, not one error per request.
      if (res.statusCode === 503) req.log.warn(line, 'request answered unavailable');
      else if (res.statusCode >= 500) req.log.error(line, 'request failed');
      else req.log.info(line, 'request');
    });
    next();
  };
}
