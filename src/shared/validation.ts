import type { z } from 'zod';
import { AppError, type FieldError } from './errors.ts';

const fieldName = (path: readonly PropertyKey[]) => path.map(String).join('.') || '(body)';

/**
 * Converts zod issues into the field errors of Tessera's JSON error shape. A value that fits none
 * of a field's accepted forms (zod's invalid_union) is an invalid_type to clients; a member a
 * strict object does not know is named itself, one error each, rather than the object holding it.
 */
export function fieldErrors(issues: z.core.$ZodIssue[]): FieldError[] {
  return issues.flatMap((issue): FieldError[] =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: fieldName([...issue.path, key]), code: issue.code, message: `Unrecognized key: "${key}"` }))
      : [{ field: fieldName(issue.path), code: issue.code === 'invalid_union' ? 'invalid_type' : issue.code, message: issue.message }],
  );
}

/** Parses input with a schema, or throws a 400 AppError listing every bad field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw AppError.validation(fieldErrors(result.error.issues));
  return result.data;
}
