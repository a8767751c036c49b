import type { RequestHandler } from 'express';
import { AppError } from '../shared/errors.ts';
import { plainHttpReason } from './raw-http.ts';

/**
 * When the issuer is https, refuses requests that reached Tessera over plain http, and logs why
 * (plainHttpReason). Behind a proxy, `req.secure` follows X-Forwarded-Proto only from addresses in
 * http.trustProxy (`trustsProxy`, the same setting). Health checks are exempt: orchestrators probe
 * the container directly.
 */
export function requireHttps(exemptPaths: string[], trustsProxy: (address: string) => boolean): RequestHandler {
  const exempt = new Set(exemptPaths);
  return (req, _res, next) => {
    if (req.secure || exempt.has(req.path)) {
      next();
      return;
    }
    next(new AppError(403, 'https_required', 'HTTPS is required.', { detail: plainHttpReason(req, trustsProxy) }));
  };
}
