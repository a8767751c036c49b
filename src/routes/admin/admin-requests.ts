import type { Request } from 'express';
import type { Actor } from '../../accounts/account-service.ts';

/** The administrator making the request, as the audit log names them. */
export function adminActor(req: Request): Actor {
  return { actor: `user:${req.caller!.user.id}`, ip: req.ip ?? null, userAgent: req.get('user-agent') ?? null };
}

/** An ISO 8601 timestamp, or null. */
export const isoOrNull = (date: Date | null): string | null => date?.toISOString() ?? null;
