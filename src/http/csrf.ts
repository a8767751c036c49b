import { createHmac, timingSafeEqual } from 'node:crypto';

// CSRF tokens for Tessera's own forms: an HMAC-SHA256 of `<purpose>:<binding>` under the cookie
// key, base64url, where the binding is what the form belongs to (a login session's id, a sign-in
// interaction's uid). Nothing is stored; a token is good for as long as what it is bound to.
// (The device flow's code form carries oidc-provider's own `xsrf` token, which it checks itself.)

export interface Csrf {
  tokenFor(purpose: string, binding: string): string;
  /** Whether `presented` is the token for this purpose and binding (in constant time). */
  verify(purpose: string, binding: string, presented: unknown): boolean;
}

export function createCsrf(key: string): Csrf {
  const tokenFor = (purpose: string, binding: string) => createHmac('sha256', key).update(`${purpose}:${binding}`).digest('base64url');
  return { tokenFor, verify: (purpose, binding, presented) => sameToken(tokenFor(purpose, binding), presented) };
}

/** Whether `presented` is `expected`, compared in constant time (a double-submit check, or verify's). */
export function sameToken(expected: string, presented: unknown): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(typeof presented === 'string' ? presented : '');
  return a.length === b.length && timingSafeEqual(a, b);
}
