import type { Request } from 'express';
import type { Config } from '../config/schema.ts';
import { tokenFormat } from './token-format.ts';
import { bearerToken } from './bearer.ts';

/** The browser session cookie: HttpOnly, SameSite=Lax, Secure when the issuer is https. */
export const SESSION_COOKIE = 'tessera_session';

export type PresentedCredential =
  | { kind: 'session'; token: string; via: 'header' | 'cookie' }
  | { kind: 'personal_access_token'; token: string; apiUser?: string; via: 'bearer' | 'query' | 'api-key' }
  | { kind: 'unknown'; token: string };

function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/**
 * Every way a Tessera credential arrives: the API-key header pair, `Authorization: Bearer` (any
 * case), X-Session and its aliases, `?access_token=`, and the browser session cookie. The token's
 * prefix says what it is; nothing is looked up here.
 */
export function presentedCredential(req: Request, config: Config): PresentedCredential | undefined {
  const apiKey = req.headers[config.tokens.apiKeyHeader];
  if (typeof apiKey === 'string' && apiKey.trim()) {
    const apiUser = req.headers[config.tokens.apiUserHeader];
    return { kind: 'personal_access_token', token: apiKey.trim(), via: 'api-key', apiUser: typeof apiUser === 'string' ? apiUser.trim() : '' };
  }
  const fromHeaders = [bearerToken(req.headers.authorization), ...['x-session', ...config.sessions.headerAliases].map((h) => req.headers[h])].find(
    (v): v is string => typeof v === 'string' && v.trim() !== '',
  );
  const query = typeof req.query.access_token === 'string' ? req.query.access_token : undefined;
  const value = fromHeaders?.trim() ?? query;
  if (value) {
    const kind = tokenFormat.parse(value);
    if (kind === 'session') return { kind, token: value, via: 'header' };
    if (kind === 'personal_access_token') return { kind, token: value, via: fromHeaders ? 'bearer' : 'query' };
    return { kind: 'unknown', token: value };
  }
  const session = cookie(req, SESSION_COOKIE);
  if (session) return { kind: 'session', token: session, via: 'cookie' };
  return undefined;
}
