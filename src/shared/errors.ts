import { rateLimitHeaders } from './rate-limit-headers.ts';

/** One field's problem in a request that failed validation. */
export interface FieldError {
  field: string;
  code: string;
  message: string;
}

/**
 * The one application error: `message` is what the client may read, `detail` only reaches the log.
 * Services throw it; src/http/error-response.ts renders it. Anything else thrown becomes a 500.
 */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string | undefined;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(status: number, code: string, message: string, options: { detail?: string; errors?: FieldError[]; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.detail = options.detail;
    this.errors = options.errors;
    this.headers = options.headers;
  }

  static badRequest(message: string, errors?: FieldError[]): AppError {
    return new AppError(400, 'bad_request', message, errors ? { errors } : {});
  }
  static validation(errors: FieldError[]): AppError {
    return new AppError(400, 'validation_failed', 'Validation error.', { errors });
  }
  static unauthorized(message = 'Authentication required.', headers?: Record<string, string>): AppError {
    return new AppError(401, 'unauthorized', message, headers ? { headers } : {});
  }
  static forbidden(message = 'Forbidden.'): AppError {
    return new AppError(403, 'forbidden', message);
  }
  static notFound(message = 'Not found.'): AppError {
    return new AppError(404, 'not_found', message);
  }
  static conflict(message: string, errors?: FieldError[]): AppError {
    return new AppError(409, 'conflict', message, errors ? { errors } : {});
  }
  /** A 429 with Retry-After and the RateLimit-* headers of the `limit` that was reached. */
  static tooManyRequests(retryAfterSeconds: number, limit: number): AppError {
    return new AppError(429, 'rate_limited', 'Too many requests. Try again later.', { headers: rateLimitHeaders(limit, retryAfterSeconds) });
  }
  static unavailable(message: string, detail?: string): AppError {
    return new AppError(503, 'unavailable', message, detail ? { detail } : {});
  }
}

/**
 * The one OAuth error (RFC 6749 §5.2), for the OAuth endpoints: `error` and `message` (its
 * error_description, left out when empty) go to the client, `detail` only to the log.
 */
export class OAuthError extends Error {
  readonly status: number;
  readonly error: string;
  readonly detail: string | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(status: number, error: string, description: string, options: { detail?: string; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OAuthError';
    this.status = status;
    this.error = error;
    this.detail = options.detail;
    this.headers = options.headers;
  }
}

/** What clients are told to wait (Retry-After, seconds) while a store is unreachable. */
export const STORE_RETRY_AFTER_SECONDS = 5;

/**
 * A store (Redis, PostgreSQL) that cannot be reached or did not answer in time: the same request
 * may succeed once it is back. The stores throw it; every endpoint answers it 503 with
 * Retry-After in its own shape (src/http/error-response.ts, src/oauth/provider/store-outage.ts).
 */
export class StoreUnavailableError extends Error {
  /** Which store: 'Redis' or 'PostgreSQL'. */
  readonly store: string;

  constructor(store: string, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StoreUnavailableError';
    this.store = store;
  }
}

/** The StoreUnavailableError this error is or was caused by (libraries wrap what they catch), if any. */
export function storeUnavailableCause(error: unknown): StoreUnavailableError | undefined {
  let current = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    if (current instanceof StoreUnavailableError) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
