import type { Request, Response } from 'express';
import type { AccountService } from '../../accounts/account-service.ts';
import type { AuditEvent } from '../../audit/audit-log.ts';
import { AppError } from '../../shared/errors.ts';
import type { Viewer } from './console-views.ts';

/** The administrator looking at the page (set by the console's guard, console-routes.ts). */
export function consoleViewer(res: Response): Viewer {
  return res.locals.viewer as Viewer;
}

/** A count a redirect carried (`?sessions=2`): digits only, else 0. */
export function countParam(req: Request, name: string): number {
  const value = req.query[name];
  return typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : 0;
}

/** A service's refusal of what a form asked (400 or 409), shown on the form; anything else is an error page. */
export function refusal(error: unknown): AppError | null {
  return error instanceof AppError && (error.status === 400 || error.status === 409) ? error : null;
}

/** The usernames of the accounts `events` name (as actor or subject), for the audit tables. */
export async function partyNames(accounts: Pick<AccountService, 'findUserById'>, events: AuditEvent[]): Promise<Map<string, string>> {
  const parties = new Set(events.flatMap((e) => [e.actor, e.subject ?? '']).filter((p) => p.startsWith('user:')));
  const found = await Promise.all([...parties].map(async (p) => [p, (await accounts.findUserById(p.slice('user:'.length)))?.username] as const));
  return new Map(found.filter((entry): entry is readonly [string, string] => entry[1] !== undefined));
}
