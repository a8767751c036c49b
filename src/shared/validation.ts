import type { z } from 'zod';
import { AppError, type FieldError } from './errors.ts';

/**
 * Converts zod issues into the field errors of Tessera's JSON error shape. A value that fits none
 * of a field's accepted forms (zod's invalid_union) is an invalid_type to clients.
 */
export function fieldErrors(issues: z.core.$ZodIssue[]): FieldError[] {
  return issues.map((issue) => ({
    field: issue.path.map(String).join('.') || '(body)',
    code: issue.code === 'invalid_union' ? 'invalid_type' : issue.code,
    message: issue.message,
  }));
}

/** Parses input with a schema, or throws a 400 AppError listing every bad field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw AppError.validation(fieldErrors(result.error.issues));
  return result.data;
}
