import type { Response } from 'express';

/** One field's problem in a request that failed validation (as in Tessera's own answers). */
export interface FieldError {
  field: string;
  code: string;
  message: string;
}

/**
 * Tessera's JSON error body: `{"message": …, "status": …}`, plus `errors` for validation failures.
 * This mirrors what Tessera's server renders (src/http/error-response.ts `errorAnswer`) without
 * importing it: the verifier is a client library and must not pull the server's modules in. Keep
 * the two in step.
 */
export interface ErrorBody {
  message: string;
  status: number;
  errors?: FieldError[];
}

export function errorBody(status: number, message: string, errors?: FieldError[]): ErrorBody {
  return errors?.length ? { message, status, errors } : { message, status };
}

/** Answers `status` with Tessera's JSON error body and the given headers. */
export function sendError(res: Response, status: number, message: string, options: { headers?: Record<string, string>; errors?: FieldError[] } = {}): void {
  for (const [name, value] of Object.entries(options.headers ?? {})) res.setHeader(name, value);
  res.status(status).json(errorBody(status, message, options.errors));
}

/** A quoted-string of an HTTP auth parameter (RFC 9110 §5.6.4): backslash-escape `"` and `\`. */
export function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/** A `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3). */
export function bearerChallenge(realm: string, params: Record<string, string> = {}): string {
  return ['Bearer', [`realm=${quoted(realm)}`, ...Object.entries(params).map(([name, value]) => `${name}=${quoted(value)}`)].join(', ')].join(' ');
}
