import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AccountService } from '../../accounts/account-service.ts';
import type { User } from '../../accounts/user.ts';
import type { Config } from '../../config/schema.ts';
import { AppError } from '../../shared/errors.ts';
import { createCsrf } from '../../http/csrf.ts';
import type { ApiSessionStore } from '../../sessions/api-session-store.ts';
import type { PersonalTokenService } from '../../personal-tokens/personal-token-service.ts';
import { configuredSources, presentedCredential, type CredentialSource } from '../../credentials/presented-credential.ts';
import { tokenFormat } from '../../credentials/token-format.ts';

/** Who is calling and with what. */
export interface Caller {
  user: User;
  scopes: string[];
  credential: 'session' | 'personal_access_token';
  /** Where the credential was found. */
  via: CredentialSource;
  token: string;
  sessionId?: string;
  tokenId?: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    caller?: Caller;
  }
}

export interface CallerDependencies {
  config: Config;
  accounts: AccountService;
  sessions: ApiSessionStore;
  personalTokens: PersonalTokenService;
  csrfKey: string;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function createCallerAuthenticator({ config, accounts, sessions, personalTokens, csrfKey }: CallerDependencies) {
  const csrf = createCsrf(csrfKey);
  /** The CSRF token of a browser session's forms and changes. */
  const csrfFor = (sessionId: string) => csrf.tokenFor('csrf', sessionId);

  const sources = configuredSources(config, { apiKey: true, bearer: 'any', query: 'url', cookie: true });

  /** Resolves the request's credential, or null when there is none or it is not valid. */
  async function identify(req: Request): Promise<Caller | null> {
    const presented = presentedCredential(req, sources);
    if (!presented) return null;
    // The API-key pair carries a personal token and the cookie a session; elsewhere the prefix says.
    const kind = presented.source === 'api_key' ? 'personal_access_token' : presented.source === 'cookie' ? 'session' : tokenFormat.parse(presented.token);
    if (kind === 'session') {
      const session = await sessions.authenticate(presented.token);
      const user = session && (await accounts.findUserById(session.userId));
      if (!session || !user || user.disabled) return null;
      return { user, scopes: session.scopes.filter((s) => user.allowedScopes.includes(s)), credential: 'session', via: presented.source, token: presented.token, sessionId: session.id };
    }
    if (kind !== 'personal_access_token') return null;
    const verified = await personalTokens.verify(presented.token, { ip: req.ip ?? null });
    const user = verified && (await accounts.findUserById(verified.userId));
    if (!verified || !user || user.disabled) return null;
    // The API-key pair names the owner: a username or e-mail that is not the token's owner fails.
    if (presented.source === 'api_key') {
      const named = (presented.apiUser ?? '').toLowerCase();
      if (named !== user.username.toLowerCase() && named !== (user.email ?? '').toLowerCase()) return null;
    }
    return { user, scopes: verified.scopes, credential: 'personal_access_token', via: presented.source, token: presented.token, tokenId: verified.tokenId };
  }

  function csrfValid(req: Request, sessionId: string): boolean {
    return csrf.verify('csrf', sessionId, req.get('x-csrf-token') ?? (req.body as Record<string, unknown> | undefined)?.csrf);
  }

  /**
   * For pages and the token-management and admin APIs: a login session (browser cookie, or an API
   * session token in a header), holding `scope` when one is named. A cookie-authenticated change
   * must carry the CSRF token. A personal access token can never manage tokens or administer.
   * Pages send people without a session to /login.
   */
  function requireLoginSession(mode: 'page' | 'api', options: { scope?: string } = {}): RequestHandler {
    return async (req: Request, res: Response, next: NextFunction) => {
      try {
        const caller = await identify(req);
        if (caller?.credential === 'personal_access_token') {
          throw AppError.forbidden(options.scope ? 'A personal access token cannot administer Tessera: sign in.' : 'A personal access token cannot list, create, rotate or revoke tokens: sign in.');
        }
        if (!caller) {
          if (mode === 'page') {
            res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
            return;
          }
          throw AppError.unauthorized('Sign in, or send an API session token in X-Session.', { 'WWW-Authenticate': 'Bearer realm="tessera"' });
        }
        if (options.scope && !caller.scopes.includes(options.scope)) {
          throw AppError.forbidden(`This needs the "${options.scope}" scope: an account that holds it, signed in with it.`);
        }
        if (caller.via === 'cookie' && UNSAFE.has(req.method) && !csrfValid(req, caller.sessionId!)) {
          throw new AppError(403, 'csrf', 'The form has expired or did not come from Tessera. Reload the page and try again.');
        }
        req.caller = caller;
        next();
      } catch (error) {
        next(error);
      }
    };
  }

  /** Whether `token` is the CSRF token of the session (a link that carries it in its query). */
  const csrfMatches = (sessionId: string, token: unknown) => csrf.verify('csrf', sessionId, token);

  return { identify, requireLoginSession, csrfFor, csrfMatches };
}

export type CallerAuthenticator = ReturnType<typeof createCallerAuthenticator>;
