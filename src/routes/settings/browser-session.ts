import type { Request, Response } from 'express';
import type { User } from '../../accounts/user.ts';
import type { AuditLog } from '../../audit/audit-log.ts';
import type { Config } from '../../config/schema.ts';
import { cookieValue } from '../../credentials/cookies.ts';
import { SESSION_COOKIE } from '../../credentials/presented-credential.ts';
import type { ApiSessionStore } from '../../sessions/api-session-store.ts';

/**
 * Opens the browser session of a user whose sign-in is complete (password, and the second step
 * when the account has one): a new session and cookie at every sign-in, so that a session id
 * planted before it is worthless; audited as session.created.
 */
export function createBrowserSessionStarter({ config, sessions, audit }: { config: Config; sessions: ApiSessionStore; audit: Pick<AuditLog, 'record'> }) {
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, secure: new URL(config.issuer).protocol === 'https:', path: '/' };
  /** `details`: what the audit event adds about the first step (e.g. the identity provider). */
  return async (req: Request, res: Response, user: User, details: Record<string, unknown> = {}): Promise<void> => {
    const ip = req.ip ?? 'unknown';
    const previous = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (previous) await sessions.endByToken(previous);
    const { token, session } = await sessions.create({ userId: user.id, scopes: user.allowedScopes, ip, userAgent: req.get('user-agent') ?? null });
    await audit.record({ actor: `user:${user.id}`, action: 'session.created', subject: `user:${user.id}`, ip, userAgent: req.get('user-agent') ?? null, details: { session: session.id, via: 'browser', ...details } });
    res.cookie(SESSION_COOKIE, token, { ...cookieOptions, maxAge: config.sessions.absoluteTimeoutSeconds * 1000 });
  };
}

export type BrowserSessionStarter = ReturnType<typeof createBrowserSessionStarter>;
