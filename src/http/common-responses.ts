import type { ResponseDeclaration } from './api-operation.ts';
import { errorBodySchema } from './error-response.ts';

// The refusals many operations share, declared once for their declarations (api-operation.ts):
// each in Tessera's error body (error-response.ts errorBodySchema).

/** An answer in the error body: what the status means at this operation. */
export function errorResponse(description: string, headers?: Record<string, string>): ResponseDeclaration {
  return { description, body: errorBodySchema, ...(headers ? { headers } : {}) };
}

const RATE_LIMIT_HEADERS = {
  'Retry-After': 'Seconds to wait before trying again.',
  'RateLimit-Limit': 'The limit that was reached.',
  'RateLimit-Remaining': 'Always 0 on a refusal.',
  'RateLimit-Reset': 'Seconds until the limit resets.',
};

export const VALIDATION_FAILED = errorResponse('Bad input: `errors` lists every bad field.');
export const UNAUTHENTICATED = errorResponse('No credential, or not a valid one (with `WWW-Authenticate`).', { 'WWW-Authenticate': 'The Bearer challenge (RFC 6750).' });
export const RATE_LIMITED = errorResponse('Too many requests from this address (`TESSERA_API_REQUESTS_PER_IP_PER_MINUTE`).', RATE_LIMIT_HEADERS);
export const NOT_JSON = errorResponse('The body is not `application/json`.');
export const TOO_LARGE = errorResponse('The body is larger than `TESSERA_BODY_LIMIT`.');

/** What any operation may answer when something fails on the server's side. */
export const SERVER_FAILURES: Readonly<Record<number, ResponseDeclaration>> = {
  500: errorResponse('An unexpected error (the body never carries internals; the log has them, under the `X-Request-Id`).'),
  503: errorResponse('A store (PostgreSQL, Redis) is unreachable: try again after `Retry-After`.', { 'Retry-After': 'Seconds to wait.' }),
};

/** The JSON API under the per-address limit (`/api`, `/users`, `/logout`): its shared refusals. */
export const LIMITED_API_FAILURES: Readonly<Record<number, ResponseDeclaration>> = { 429: RATE_LIMITED, ...SERVER_FAILURES };

export { RATE_LIMIT_HEADERS };
