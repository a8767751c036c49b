import type { IdentityProvider } from '../config/identity-providers.ts';

// What Tessera takes from a provider's claims (docs/sign-in-providers.md): a new account's
// username, its e-mail (only a verified one), the allowed scopes the operator's rules grant.

export type Claims = Record<string, unknown>;

const USERNAME_MAX = 64;

/** A claim value as a username: an e-mail gives its local part; other characters become '-'. */
export function usernameFrom(value: string): string | null {
  const local = value.includes('@') ? value.slice(0, value.lastIndexOf('@')) : value;
  const cleaned = local
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .replace(/[-.]+$/, '')
    .slice(0, USERNAME_MAX);
  return cleaned === '' ? null : cleaned;
}

/** The usernames to try for a new account, in order; the provider's id plus the subject's start when no claim gives one. The first gets a suffix when all are taken. */
export function usernameCandidates(provider: IdentityProvider, claims: Claims, subject: string): string[] {
  const found = provider.claims.username
    .map((claim) => claims[claim])
    .map((value) => (typeof value === 'string' || typeof value === 'number' ? usernameFrom(String(value)) : null))
    .filter((value): value is string => value !== null);
  const fallback = usernameFrom(`${provider.id}-${subject.slice(0, 16)}`) ?? provider.id;
  return found.length ? [...new Set(found)] : [fallback];
}

/** The e-mail the provider vouches for (`email_verified` true, or its verified list for GitHub), else null. */
export function verifiedEmail(provider: IdentityProvider, claims: Claims): string | null {
  const email = claims[provider.claims.email];
  if (typeof email !== 'string' || email.length > 254 || !email.includes('@')) return null;
  return claims.email_verified === true ? email : null;
}

/** Every string a claim holds (a string, or the strings of an array). */
function claimValues(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
  return [];
}

/** The allowed scopes the provider's rules grant for these claims, limited to the catalog. */
export function scopesFromClaims(provider: IdentityProvider, claims: Claims, catalog: Record<string, string>): string[] {
  const granted = provider.scopeRules.filter((rule) => claimValues(claims[rule.claim]).includes(rule.value)).flatMap((rule) => rule.scopes);
  return [...new Set(granted)].filter((scope) => scope in catalog);
}
