import { Router } from 'express';
import type { AccountService } from '../../accounts/account-service.ts';
import type { AuditFilterInput, AuditQuery } from '../../audit/audit-query.ts';
import { sendPage } from '../../http/pages.ts';
import { AppError, type FieldError } from '../../shared/errors.ts';
import { auditPage, AUDIT_FILTERS, type AuditFilterName } from './audit-pages.ts';
import { consoleViewer, partyNames, refusal } from './console-requests.ts';
import { refusedForm } from './console-views.ts';

const PAGE_SIZE = 50;

/** The query service's names of the filters, as the page's fields are named. */
const FORM_FIELDS: Readonly<Record<string, AuditFilterName>> = { userId: 'user', action: 'action', clientId: 'client', since: 'since', until: 'until' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** What a datetime-local field sends, read as UTC (the page says so). */
const LOCAL_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/;

/**
 * The console's page on the audit log: /admin/audit, newest first, 50 events a page, filtered by
 * user, action (or a prefix), client and time, on the audit query service. Every match can be
 * downloaded as JSON lines from the admin API's export, with the same filters.
 */
export function createAuditConsoleRoutes({ accounts, auditQuery }: { accounts: Pick<AccountService, 'findUserByLogin' | 'findUserById'>; auditQuery: Pick<AuditQuery, 'page'> }): Router {
  const router = Router();

  /** The typed filters as the query service's, or a validation error in its field names. */
  async function toFilter(typed: Record<AuditFilterName, string>): Promise<AuditFilterInput> {
    const problems: FieldError[] = [];
    const filter: AuditFilterInput = {};
    if (typed.user) {
      // An account by name; a deleted one (its history stays) by its id.
      const user = UUID.test(typed.user) ? { id: typed.user.toLowerCase() } : await accounts.findUserByLogin(typed.user);
      if (user) filter.userId = user.id;
      else problems.push({ field: 'userId', code: 'unknown', message: 'no account by that username or e-mail (for a deleted account, give its id)' });
    }
    if (typed.action) filter.action = typed.action;
    if (typed.client) filter.clientId = typed.client;
    for (const name of ['since', 'until'] as const) {
      if (!typed[name]) continue;
      const at = LOCAL_TIME.test(typed[name]) ? new Date(`${typed[name]}Z`) : new Date(NaN);
      if (Number.isNaN(at.getTime())) problems.push({ field: name, code: 'invalid', message: 'must be a date and time, as 2026-12-01T08:00' });
      else filter[name] = at;
    }
    if (problems.length) throw AppError.validation(problems);
    return filter;
  }

  /** The admin API's JSON-lines export of the same events (the browser's session admits it). */
  function exportHref(filter: AuditFilterInput): string {
    const query = new URLSearchParams();
    if (filter.userId) query.set('user_id', filter.userId);
    if (filter.action) query.set('action', filter.action);
    if (filter.clientId) query.set('client_id', filter.clientId);
    if (filter.since instanceof Date) query.set('since', filter.since.toISOString());
    if (filter.until instanceof Date) query.set('until', filter.until.toISOString());
    return `/api/v1/admin/audit/export${query.size ? `?${query.toString()}` : ''}`;
  }

  router.get('/admin/audit', async (req, res) => {
    const typed = Object.fromEntries(AUDIT_FILTERS.map((name) => [name, typeof req.query[name] === 'string' ? (req.query[name] as string).trim() : ''])) as Record<AuditFilterName, string>;
    const cursor = typeof req.query.cursor === 'string' && req.query.cursor ? req.query.cursor : undefined;
    const common = { viewer: consoleViewer(res), filters: typed, paged: cursor !== undefined };
    try {
      const filter = await toFilter(typed);
      const page = await auditQuery.page(filter, { limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) });
      const older = new URLSearchParams(Object.entries(typed).filter(([, value]) => value));
      if (page.nextCursor) older.set('cursor', page.nextCursor);
      sendPage(
        res,
        200,
        auditPage({ ...common, events: page.events, names: await partyNames(accounts, page.events), older: page.nextCursor ? `/admin/audit?${older.toString()}` : null, exportHref: exportHref(filter) }),
      );
    } catch (error) {
      const refused = refusal(error);
      if (!refused) throw error;
      sendPage(res, refused.status, auditPage({ ...common, events: [], names: new Map(), older: null, refused: refusedForm(refused, typed, (field) => FORM_FIELDS[field]) }));
    }
  });

  return router;
}
