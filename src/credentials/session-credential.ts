import type { Request } from 'express';
import { tokenFormat } from './token-format.ts';
import { bearerToken } from './bearer.ts';

/**
 * Where an API session token may come from: X-Session, the operator's alias headers (such as
 * X-ArchivesSpace-Session), or `Authorization: Bearer` (any case of the scheme) holding a session
 * token.
 */
export function sessionTokenFrom(req: Request, headerAliases: string[]): string | undefined {
  for (const name of ['x-session', ...headerAliases]) {
    const value = req.headers[name];
    if (typeof value === 'string' && value.trim()) return value.trim();
  }
  const bearer = bearerToken(req.headers.authorization);
  if (bearer && tokenFormat.parse(bearer) === 'session') return bearer;
  return undefined;
}
