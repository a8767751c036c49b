import { AppError } from '../shared/errors.ts';

/**
 * A validation error from a service, its fields renamed as the API's clients send them (the
 * services name fields in camelCase, the JSON API in snake_case). Anything else is unchanged.
 */
export function inApiFieldNames(error: unknown, names: Readonly<Record<string, string>>): unknown {
  if (!(error instanceof AppError) || !error.errors?.length) return error;
  const errors = error.errors.map((e) => {
    // Every segment: a nested object's fields are named as the API names them too.
    return { ...e, field: e.field.split('.').map((segment) => names[segment] ?? segment).join('.') };
  });
  return new AppError(error.status, error.code, error.message, { errors, ...(error.detail ? { detail: error.detail } : {}), ...(error.headers ? { headers: error.headers } : {}) });
}
