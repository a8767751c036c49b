import { describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { AppError } from '../../../src/shared/errors.ts';
import { parseInput } from '../../../src/shared/validation.ts';

const schema = z.strictObject({
  name: z.string(),
  policy: z.strictObject({ scopes: z.array(z.string()) }).optional(),
  lifetime: z.union([z.number(), z.literal('never')]).optional(),
});

/** The field errors parseInput throws for `input`. */
function errorsOf(input: unknown) {
  try {
    parseInput(schema, input);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return (error as AppError).errors ?? [];
  }
  throw new Error('parseInput accepted the input');
}

describe('field errors from zod issues', () => {
  it('names each unknown member itself, at any depth', () => {
    const byField = (a: { field: string }, b: { field: string }) => a.field.localeCompare(b.field);
    expect(errorsOf({ name: 'a', colour: 'red', policy: { scopes: [], maxAge: 1, extra: true } }).sort(byField)).toEqual([
      { field: 'colour', code: 'unrecognized_keys', message: 'Unrecognized key: "colour"' },
      { field: 'policy.extra', code: 'unrecognized_keys', message: 'Unrecognized key: "extra"' },
      { field: 'policy.maxAge', code: 'unrecognized_keys', message: 'Unrecognized key: "maxAge"' },
    ]);
  });

  it('names list elements by index, calls a value fitting no form invalid_type, and the whole body (body)', () => {
    expect(errorsOf({ name: 'a', policy: { scopes: ['read', 7] }, lifetime: 'soon' }).map(({ field, code }) => [field, code])).toEqual([
      ['policy.scopes.1', 'invalid_type'],
      ['lifetime', 'invalid_type'],
    ]);
    expect(errorsOf('not an object').map(({ field, code }) => [field, code])).toEqual([['(body)', 'invalid_type']]);
  });
});
