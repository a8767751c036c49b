// Validation of a new personal token's name, scopes and lifetime, against the user's allowed
// scopes and the operator's limits.
import { z } from 'zod';
import type { User } from '../accounts/user.ts';

export const MAX_TOKEN_NAME_LENGTH = 100;

export interface PersonalTokenLimits {
  scopeCatalog: Record<string, string>;
  maxExpiryDays: number;
  allowNoExpiry: boolean;
}

/** The schema of CreatePersonalTokenInput for this user, defaults already applied by the caller. */
export function createPersonalTokenSchema(user: User, { scopeCatalog, maxExpiryDays, allowNoExpiry }: PersonalTokenLimits) {
  return z
    .object({
      name: z
        .string({ message: 'must be a string' })
        .trim()
        .min(1, { message: 'must not be empty' })
        .max(MAX_TOKEN_NAME_LENGTH, { message: `must be at most ${MAX_TOKEN_NAME_LENGTH} characters` })
        .regex(/^[^\p{Cc}]*$/u, { message: 'must not contain control characters' }),
      scopes: z
        .array(z.string())
        .min(1, { message: 'must name at least one scope' })
        .superRefine((scopes, context) => {
          scopes.forEach((scope, index) => {
            if (!Object.hasOwn(scopeCatalog, scope)) {
              context.addIssue({ code: 'custom', path: [index], message: `unknown scope "${scope}"` });
            } else if (!user.allowedScopes.includes(scope)) {
              context.addIssue({
                code: 'custom',
                path: [index],
                message: `scope "${scope}" is not one of your allowed scopes (${user.allowedScopes.join(', ') || 'none'})`,
              });
            }
          });
        })
        .transform((scopes) => [...new Set(scopes)]),
      expiresInDays: z
        .number({ message: `must be a number of days (1–${maxExpiryDays})${allowNoExpiry ? ' or null for no expiry' : ''}` })
        .int({ message: 'must be a whole number of days' })
        .min(1, { message: 'must be at least 1 day' })
        .max(maxExpiryDays, { message: `must be at most ${maxExpiryDays} days` })
        .nullable()
        .superRefine((days, context) => {
          if (days === null && !allowNoExpiry) context.addIssue({ code: 'custom', message: `tokens must expire: choose 1–${maxExpiryDays} days` });
        }),
    });
}
