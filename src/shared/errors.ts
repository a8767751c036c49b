/** One field's problem in a request that failed validation. */
export interface FieldError {
  field: string;
  code: string;
  message: string;
}

/**
 * The one application error type. `message` is what the client may read; `detail` only ever
 * reaches the log. Anything thrown that is not an AppError is rendered as a bare 500.
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
  static tooManyRequests(retryAfterSeconds: number): AppError {
    return new AppError(429, 'rate_limited', 'Too many requests. Try again later.', { headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) } });
  }
  static unavailable(message: string, detail?: string): AppError {
    return new AppError(503, 'unavailable', message, detail ? { detail } : {});
  }
}

/** The JSON error body every non-OAuth endpoint answers with. */
export interface ErrorBody {
  message: string;
  status: number;
  errors?: FieldError[];
}

export function errorBody(error: AppError): ErrorBody {
  return error.errors?.length ? { message: error.message, status: error.status, errors: error.errors } : { message: error.message, status: error.status };
}
