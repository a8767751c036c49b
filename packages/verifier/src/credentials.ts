import type { Request } from 'express';

/** Where the credential of a request was found. */
export type CredentialSource = 'api_key' | 'authorization' | 'session_header' | 'query';

export interface PresentedCredential {
  token: string;
  source: CredentialSource;
  /** With the API-key pair: the user header as sent ('' when it is missing). */
  apiUser?: string;
}

/** The header names a request's credential may come in (lower case). */
export interface CredentialHeaderNames {
  apiKeyHeader: string;
  apiUserHeader: string;
  /** `x-session` and its aliases. */
  sessionHeaders: string[];
}

function headerValue(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' && value.trim() ? value.trim() : undefined;
}

/**
 * The request's credential, looked for in Tessera's own order (src/credentials/presented-credential.ts,
 * which a test holds this copy to): the API-key pair, `Authorization: Bearer` (any case of
 * `Bearer`), the session headers, then `?access_token=`. The first one found is the credential;
 * the others are not looked at.
 */
export function presentedCredential(req: Request, names: CredentialHeaderNames): PresentedCredential | undefined {
  const apiKey = headerValue(req, names.apiKeyHeader);
  if (apiKey) return { token: apiKey, source: 'api_key', apiUser: headerValue(req, names.apiUserHeader) ?? '' };
  const bearer = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
  if (bearer) return { token: bearer, source: 'authorization' };
  for (const name of names.sessionHeaders) {
    const session = headerValue(req, name);
    if (session) return { token: session, source: 'session_header' };
  }
  // The raw URL rather than req.query: independent of the app's query parser setting.
  const query = new URL(req.originalUrl || req.url, 'http://request.invalid').searchParams.get('access_token');
  if (query) return { token: query, source: 'query' };
  return undefined;
}
