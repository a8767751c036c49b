import type { IncomingHttpHeaders } from 'node:http';
import type { Config } from '../config/schema.ts';
import { bearerToken } from './bearer.ts';
import { cookieValue } from './cookies.ts';
import { tokenFormat } from './token-format.ts';

// The one reader of the credential a request presents. Every route that takes one tries the
// sources in the same order (docs/http-api.md#sending-a-credential); each says which it accepts.
// @tessera/verifier keeps its own copy (it imports nothing from the server): a test holds the two
// to the same answers.

/** The browser session cookie: HttpOnly, SameSite=Lax, Secure when the issuer is https. */
export const SESSION_COOKIE = 'tessera_session';

/** Where the credential was found (@tessera/verifier's names, and the cookie). */
export type CredentialSource = 'api_key' | 'authorization' | 'session_header' | 'query' | 'cookie';

export interface PresentedCredential {
  token: string;
  source: CredentialSource;
  /** With the API-key pair: the user header, trimmed ('' when it is missing). */
  apiUser?: string;
}

/** The sources a route accepts. Header names are lower case. */
export interface CredentialSources {
  apiKey?: { keyHeader: string; userHeader: string };
  /** `Authorization: Bearer` with any token, or only with a session token (another is passed over). */
  bearer: 'any' | 'session';
  /** `x-session` and its aliases. */
  sessionHeaders: readonly string[];
  /** `?access_token=` of the request's URL, or of the URL a gateway forwards (X-Original-URI, X-Forwarded-URI). */
  query?: 'url' | 'forwarded';
  cookie?: boolean;
}

/** What is read of a request (an express request is one). */
export interface CredentialRequest {
  headers: IncomingHttpHeaders;
  originalUrl?: string;
  url?: string;
}

/**
 * The request's credential: the first found of the API-key pair, `Authorization: Bearer` (any case
 * of the scheme), the session headers, `?access_token=`, the session cookie, among `sources`. The
 * token's kind is not checked here (but for `bearer: 'session'`) and nothing is looked up.
 */
export function presentedCredential(req: CredentialRequest, sources: CredentialSources): PresentedCredential | undefined {
  const { headers } = req;
  if (sources.apiKey) {
    const key = headerValue(headers, sources.apiKey.keyHeader);
    if (key) return { token: key, source: 'api_key', apiUser: headerValue(headers, sources.apiKey.userHeader) ?? '' };
  }
  const bearer = bearerToken(headers.authorization);
  if (bearer && (sources.bearer === 'any' || tokenFormat.parse(bearer) === 'session')) return { token: bearer, source: 'authorization' };
  for (const name of sources.sessionHeaders) {
    const session = headerValue(headers, name);
    if (session) return { token: session, source: 'session_header' };
  }
  const query = sources.query === 'url' ? accessToken(req.originalUrl || req.url) : sources.query === 'forwarded' ? forwardedAccessToken(headers) : undefined;
  if (query) return { token: query, source: 'query' };
  const cookie = sources.cookie ? cookieValue(headers.cookie, SESSION_COOKIE) : undefined;
  if (cookie) return { token: cookie, source: 'cookie' };
  return undefined;
}

/** The sources with the header names the configuration gives. */
export function configuredSources(config: Pick<Config, 'tokens' | 'sessions'>, accepted: { apiKey?: boolean; bearer: 'any' | 'session'; query?: 'url' | 'forwarded'; cookie?: boolean }): CredentialSources {
  return {
    ...(accepted.apiKey ? { apiKey: { keyHeader: config.tokens.apiKeyHeader, userHeader: config.tokens.apiUserHeader } } : {}),
    bearer: accepted.bearer,
    sessionHeaders: ['x-session', ...config.sessions.headerAliases],
    ...(accepted.query ? { query: accepted.query } : {}),
    ...(accepted.cookie ? { cookie: true } : {}),
  };
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' && value.trim() ? value.trim() : undefined;
}

function accessToken(url: string | undefined): string | undefined {
  if (!url?.includes('?')) return undefined;
  return new URL(url, 'http://request.invalid').searchParams.get('access_token') ?? undefined;
}

function forwardedAccessToken(headers: IncomingHttpHeaders): string | undefined {
  for (const name of ['x-original-uri', 'x-forwarded-uri']) {
    const uri = headers[name];
    if (typeof uri !== 'string') continue;
    const token = new URL(uri, 'http://gateway.invalid').searchParams.get('access_token');
    if (token) return token;
  }
  return undefined;
}

