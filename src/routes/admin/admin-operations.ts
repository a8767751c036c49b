import { z } from 'zod';
import type { ResponseDeclaration } from '../../http/api-operation.ts';
import { errorResponse, LIMITED_API_FAILURES, NOT_JSON, TOO_LARGE, UNAUTHENTICATED, VALIDATION_FAILED } from '../../http/common-responses.ts';

// What every operation of the admin API shares in its declaration (api-operation.ts): its tag's
// prefix, its credentials and its refusals.

/** A login session holding the admin scope (admin-routes.ts); never a personal access token. */
export const ADMIN_CREDENTIALS = ['apiSession', 'browserSession'] as const;

export const ADMIN_DESCRIPTION = 'For a login session holding the `admin` scope (docs/admin-api.md).';

/** The refusals of every admin operation. */
export const ADMIN_FAILURES: Readonly<Record<number, ResponseDeclaration>> = {
  401: UNAUTHENTICATED,
  403: errorResponse('Not an administrator\'s login session: a personal access token, a session without the `admin` scope, or a cookie-authenticated change without its CSRF token.'),
  ...LIMITED_API_FAILURES,
};

/** The refusals of an admin operation that reads a JSON body. */
export const ADMIN_BODY_FAILURES: Readonly<Record<number, ResponseDeclaration>> = { 400: VALIDATION_FAILED, 413: TOO_LARGE, 415: NOT_JSON };

/** A timestamp, or null. */
export const isoDateOrNull = z.iso.datetime().nullable();
