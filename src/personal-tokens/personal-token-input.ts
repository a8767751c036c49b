// Validation of a new personal token's name, scopes and lifetime, against the user's allowed
// scopes and the operator's limits.
import { z } from 'zod';
import type { User } from '../accounts/user.ts';
import { anyCovers, checkCatalogScope } from '../shared/path-scopes.ts';

export const MAX_TOKEN_NAME_LENGTH = 100;

/**
 * Characters a token name may not hold because they make it read as something it is not, in the
 * settings pages, the security log, the console and a terminal: every format character (Cf: the
 * bidirectional embeddings, overrides and isolates U+202A–U+202E and U+2066–U+2069, the marks
 * U+200E, U+200F and U+061C, zero-width spaces and joiners, U+FEFF, soft hyphens, tag characters),
 * line and paragraph separators, lone surrogates, and the letters that render as nothing (the
 * Hangul fillers, U+2800). The zero-width joiner of emoji sequences goes too: a name is an
 * identifier, not prose. Control characters (Cc) are refused with their own message.
 */
const INVISIBLE = /[\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u115F\u1160\u3164\uFFA0\u2800]/u;

/** The first character of `name` that could disguise it (as U+XXXX, with its kind), or null. */
export function disguisingCharacterIn(name: string): string | null {
  const found = INVISIBLE.exec(name)?.[0];
  if (found === undefined) return null;
  const code = found.codePointAt(0)!;
  const point = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  const bidi = (code >= 0x202a && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069) || code === 0x200e || code === 0x200f || code === 0x061c;
  return `${point} (${bidi ? 'a right-to-left or left-to-right control' : 'an invisible character'})`;
}

export interface PersonalTokenLimits {
  scopeCatalog: Record<string, string>;
  /** The catalog's path-scoped names: a token may be narrowed to a path under one the user holds. */
  pathScopes?: readonly string[];
  maxExpiryDays: number;
  allowNoExpiry: boolean;
}

/** The schema of CreatePersonalTokenInput for this user, defaults already applied by the caller. */
export function createPersonalTokenSchema(user: User, { scopeCatalog, pathScopes = [], maxExpiryDays, allowNoExpiry }: PersonalTokenLimits) {
  const pathScoped = new Set(pathScopes);
  return z
    .object({
      name: z
        .string({ message: 'must be a string' })
        .trim()
        .min(1, { message: 'must not be empty' })
        .max(MAX_TOKEN_NAME_LENGTH, { message: `must be at most ${MAX_TOKEN_NAME_LENGTH} characters` })
        .regex(/^[^\p{Cc}]*$/u, { message: 'must not contain control characters' })
        .superRefine((name, context) => {
          const found = disguisingCharacterIn(name);
          if (found) context.addIssue({ code: 'custom', message: `must not contain ${found}: such characters can make a name look like another one` });
        }),
      scopes: z
        .array(z.string())
        .min(1, { message: 'must name at least one scope' })
        .superRefine((scopes, context) => {
          scopes.forEach((scope, index) => {
            const checked = checkCatalogScope(scope, scopeCatalog, pathScoped);
            if (!checked.ok) {
              context.addIssue({ code: 'custom', path: [index], message: checked.problem });
            } else if (!anyCovers(user.allowedScopes, checked.scope, pathScoped)) {
              context.addIssue({
                code: 'custom',
                path: [index],
                message: `scope "${scope}" is not one of your allowed scopes (${user.allowedScopes.join(', ') || 'none'})`,
              });
            }
          });
        })
        .transform((scopes) => [...new Set(scopes.map((scope) => (checkCatalogScope(scope, scopeCatalog, pathScoped) as { scope: string }).scope))]),
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
