import { parseArgs } from 'node:util';
import { auditEventJson, type AuditFilterInput } from '../audit/audit-query.ts';
import type { AuditEvent } from '../audit/audit-log.ts';
import type { Core } from '../core.ts';
import { AppError } from '../shared/errors.ts';
import type { PlannedCommand } from './admin-commands.ts';
import { UsageError } from './prompt.ts';

export const AUDIT_USAGE = `usage: tessera audit [--user NAME | --user-id ID] [--action A | --action PREFIX.] [--client ID]
                     [--since TIME] [--until TIME] [--limit N] [--cursor C] [--json | --export]`;

/** Details as key=value, each value compact (lists joined by commas). */
function describeDetails(details: Record<string, unknown>): string {
  return Object.entries(details)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join(',') : typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value)}`)
    .join(' ');
}

function describeEvent(event: AuditEvent): string {
  return [event.occurredAt.toISOString(), event.action, event.actor, event.subject ?? '-', event.ip ?? '-', describeDetails(event.details) || '-'].join('\t');
}

/**
 * `tessera audit`: the audit log, newest first, by the same query service as the admin API. A
 * page at a time (the next page's --cursor is printed last), as one JSON object (--json), or every
 * match as JSON lines (--export), read from the database a batch at a time.
 */
export function planAuditCommand(args: string[]): PlannedCommand {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      user: { type: 'string' },
      'user-id': { type: 'string' },
      action: { type: 'string' },
      client: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string', default: '50' },
      cursor: { type: 'string' },
      json: { type: 'boolean', default: false },
      export: { type: 'boolean', default: false },
    },
  });
  if (positionals.length) throw new UsageError(AUDIT_USAGE);
  if (values.user !== undefined && values['user-id'] !== undefined) throw new UsageError('give --user or --user-id, not both');
  if (values.json && values.export) throw new UsageError('give --json or --export, not both');
  if (values.export && values.cursor !== undefined) throw new UsageError('--export reads every match: it takes no --cursor');
  return async ({ accounts, auditQuery }: Core, io) => {
    let userId = values['user-id'];
    if (values.user !== undefined) {
      const user = await accounts.findUserByLogin(values.user);
      if (!user) throw AppError.notFound(`No user named "${values.user}" (a deleted user's events: --user-id).`);
      userId = user.id;
    }
    const filter: AuditFilterInput = {
      ...(userId !== undefined ? { userId } : {}),
      ...(values.action !== undefined ? { action: values.action } : {}),
      ...(values.client !== undefined ? { clientId: values.client } : {}),
      ...(values.since !== undefined ? { since: values.since } : {}),
      ...(values.until !== undefined ? { until: values.until } : {}),
    };
    if (values.export) {
      for await (const event of auditQuery.export(filter)) io.out(JSON.stringify(auditEventJson(event)));
      return;
    }
    const page = await auditQuery.page(filter, { limit: values.limit, ...(values.cursor !== undefined ? { cursor: values.cursor } : {}) });
    if (values.json) {
      io.out(JSON.stringify({ events: page.events.map(auditEventJson), next_cursor: page.nextCursor }));
      return;
    }
    io.out('TIME\tACTION\tACTOR\tSUBJECT\tIP\tDETAILS');
    for (const event of page.events) io.out(describeEvent(event));
    if (page.nextCursor) io.out(`(more: the same command with --cursor ${page.nextCursor})`);
  };
}
