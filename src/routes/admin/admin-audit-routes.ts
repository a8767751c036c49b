import { once } from 'node:events';
import { Router, type Response } from 'express';
import { z } from 'zod';
import { auditEventJson, type AuditFilterInput, type AuditQuery } from '../../audit/audit-query.ts';
import { inApiFieldNames } from '../../http/api-field-names.ts';
import { defineOperation, route } from '../../http/api-operation.ts';
import { errorResponse, VALIDATION_FAILED } from '../../http/common-responses.ts';
import { methodNotAllowed } from '../../http/refusals.ts';
import type { AccountService } from '../../accounts/account-service.ts';
import { AppError } from '../../shared/errors.ts';
import { ADMIN_CREDENTIALS, ADMIN_DESCRIPTION, ADMIN_FAILURES } from './admin-operations.ts';

const AUDIT = '/api/v1/admin/audit';
const TAG = 'Admin: audit log';

/** The query service's names of the filters, as this API's clients send them. */
const API_FIELD_NAMES: Readonly<Record<string, string>> = { userId: 'user_id', clientId: 'client_id' };

// The shapes only: the query service checks every value and names what is wrong (docs/audit.md).
const filterQuery = {
  user: z.string().optional().meta({ description: "A user's username or e-mail: as `user_id`, for an account that exists (a deleted one's events: `user_id`)." }),
  user_id: z.string().optional().meta({ description: "A user's id: what they did, what was done to their account, events on their credentials." }),
  action: z.string().optional().meta({ description: 'An action (`sign_in.failed`), or a prefix ending in a dot (`sign_in.`).' }),
  client_id: z.string().optional().meta({ description: "A client's id: what it did, what was done to it, events on its tokens." }),
  since: z.string().optional().meta({ description: 'From this instant on (ISO 8601, inclusive).' }),
  until: z.string().optional().meta({ description: 'Before this instant (ISO 8601, exclusive).' }),
};
const pageQuery = z.strictObject({
  ...filterQuery,
  limit: z.string().optional().meta({ description: 'Events per page, 1–500 (default 50).' }),
  cursor: z.string().optional().meta({ description: 'The `next_cursor` of the page before: the next, older page.' }),
});
const exportQuery = z.strictObject(filterQuery);

const eventSchema = z.object({
  id: z.number().int(),
  occurred_at: z.iso.datetime(),
  actor: z.string().meta({ description: '`user:<id>`, `client:<id>`, `cli:<os user>`, `ip:<address>` or `system`.' }),
  action: z.string(),
  subject: z.string().nullable(),
  ip: z.string().nullable(),
  user_agent: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).meta({ description: 'Facts of the event; never a secret.' }),
});

export const listAuditOperation = defineOperation({
  method: 'get', path: AUDIT, operationId: 'adminListAuditEvents', summary: 'The audit log, newest first, a page at a time', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  query: pageQuery,
  responses: {
    200: { description: 'A page of events.', body: z.object({ events: z.array(eventSchema), next_cursor: z.string().nullable().meta({ description: 'Where the next, older page starts; null on the last.' }) }) },
    400: VALIDATION_FAILED,
    404: errorResponse('No account has the username or e-mail given as `user`.'),
    ...ADMIN_FAILURES,
  },
});

export const exportAuditOperation = defineOperation({
  method: 'get', path: `${AUDIT}/export`, operationId: 'adminExportAuditEvents', summary: 'Every matching event as JSON lines, newest first (streamed)', description: ADMIN_DESCRIPTION, tag: TAG, credentials: ADMIN_CREDENTIALS,
  query: exportQuery,
  responses: {
    200: { description: 'One event a line, each as in the list (JSON Lines).', body: z.string(), contentType: 'application/x-ndjson' },
    400: VALIDATION_FAILED,
    404: errorResponse('No account has the username or e-mail given as `user`.'),
    ...ADMIN_FAILURES,
  },
});

/** The filter of a query; `user` names an account, found here (404 when none is). */
async function filterOf(query: z.output<typeof exportQuery>, accounts: Pick<AccountService, 'findUserByLogin'>): Promise<AuditFilterInput> {
  if (query.user !== undefined && query.user_id !== undefined) throw AppError.validation([{ field: 'user', code: 'conflict', message: 'give user or user_id, not both' }]);
  let userId = query.user_id;
  if (query.user !== undefined) {
    const user = await accounts.findUserByLogin(query.user);
    if (!user) throw AppError.notFound(`No user named "${query.user}" (a deleted account's events: filter by user_id).`);
    userId = user.id;
  }
  return {
    ...(userId !== undefined ? { userId } : {}),
    ...(query.action !== undefined ? { action: query.action } : {}),
    ...(query.client_id !== undefined ? { clientId: query.client_id } : {}),
    ...(query.since !== undefined ? { since: query.since } : {}),
    ...(query.until !== undefined ? { until: query.until } : {}),
  };
}

/** Writes a line, waiting while the client is slower than the database (never all in memory). */
async function writeLine(res: Response, line: string): Promise<void> {
  if (!res.write(`${line}\n`)) await once(res, 'drain');
}

/** The audit log for administrators: a page at a time, or every match as JSON lines. */
export function createAdminAuditRoutes({ auditQuery, accounts }: { auditQuery: AuditQuery; accounts: Pick<AccountService, 'findUserByLogin'> }): Router {
  const router = Router();

  route(router, listAuditOperation, [], async (_req, res, { query }) => {
    try {
      const page = await auditQuery.page(await filterOf(query, accounts), { ...(query.limit !== undefined ? { limit: query.limit } : {}), ...(query.cursor !== undefined ? { cursor: query.cursor } : {}) });
      res.set('Cache-Control', 'no-store').json({ events: page.events.map(auditEventJson), next_cursor: page.nextCursor });
    } catch (error) {
      throw inApiFieldNames(error, API_FIELD_NAMES);
    }
  });
  router.all(AUDIT, methodNotAllowed(['GET']));

  route(router, exportAuditOperation, [], async (req, res, { query }) => {
    let events;
    let first;
    try {
      events = auditQuery.export(await filterOf(query, accounts));
      // The filter is checked (and the first batch read) before the answer starts: a bad filter is still a 400.
      first = await events.next();
    } catch (error) {
      throw inApiFieldNames(error, API_FIELD_NAMES);
    }
    res.status(200).set({ 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Content-Disposition': 'attachment; filename="tessera-audit.jsonl"', 'Cache-Control': 'no-store' });
    const closed = () => res.destroyed || req.socket.destroyed;
    // A failure from here on is too late for an error answer: the error handler logs it and cuts
    // the stream short, which a reader of JSON lines sees (no last newline, or no end).
    try {
      for (let next = first; !next.done && !closed(); next = await events.next()) await writeLine(res, JSON.stringify(auditEventJson(next.value)));
    } finally {
      await events.return(undefined);
    }
    res.end();
  });
  router.all(`${AUDIT}/export`, methodNotAllowed(['GET']));

  return router;
}
