import { z } from 'zod';
import { AppError } from '../shared/errors.ts';
import { parseInput } from '../shared/validation.ts';
import type { Database } from '../store/sql/database.ts';
import { AUDIT_COLUMNS, toAuditEvent, type AuditEvent, type AuditRow } from './audit-log.ts';

// Reading the audit log for operators: `tessera audit` and the admin API. Filters by user, action
// (exact, or a prefix ending in a dot), client and time; pages newest first by an opaque cursor;
// exports every match as JSON lines a page at a time. Indexes: migrations 0008–0013.

const MAX_PAGE = 500;
const EXPORT_BATCH = 500;

/** An action, or a prefix of actions ending in a dot ("sign_in."). */
const actionFilter = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .regex(/^[a-z0-9_]+(\.[a-z0-9_]+)*\.?$/, { message: 'an action ("sign_in.failed") or a prefix ending in a dot ("sign_in.")' });

const instant = z.coerce.date({ message: 'a date and time, e.g. 2026-12-01T00:00:00Z' });

export const auditFilterSchema = z
  .object({
    /** A user's id: what they did, what was done to them, events on their credentials. */
    userId: z.string().trim().min(1).max(100).optional(),
    action: actionFilter.optional(),
    /** A client's id: what it did, what was done to it, events on its tokens. */
    clientId: z.string().trim().min(1).max(200).optional(),
    /** From this instant on (inclusive). */
    since: instant.optional(),
    /** Before this instant (exclusive). */
    until: instant.optional(),
  })
  .strict()
  .refine((filter) => !filter.since || !filter.until || filter.since < filter.until, { message: 'since must be before until', path: ['until'] });

export type AuditFilter = z.output<typeof auditFilterSchema>;
export type AuditFilterInput = z.input<typeof auditFilterSchema>;

export const auditPageSchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(50),
    /** The `nextCursor` of the page before; absent for the newest page. */
    cursor: z.string().max(200).optional(),
  })
  .strict();

export interface AuditPage {
  events: AuditEvent[];
  /** Where the next (older) page starts; null on the last page. */
  nextCursor: string | null;
}

export interface AuditQuery {
  /** One page of matching events, newest first. 400 for a bad filter or cursor. */
  page(filter: AuditFilterInput, page?: z.input<typeof auditPageSchema>): Promise<AuditPage>;
  /** Every matching event, newest first, read a batch at a time (never all in memory). */
  export(filter: AuditFilterInput): AsyncGenerator<AuditEvent>;
}

/**
 * A cursor is the id of the last event a page showed: events are numbered as they are written
 * and read by descending id, so events written meanwhile (which are newer) never shift a page.
 */
const CURSOR_PREFIX = 'a1.';

export function encodeCursor(id: number): string {
  return Buffer.from(`${CURSOR_PREFIX}${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const id = text.startsWith(CURSOR_PREFIX) ? Number(text.slice(CURSOR_PREFIX.length)) : NaN;
  if (!Number.isSafeInteger(id) || id < 1) throw AppError.validation([{ field: 'cursor', code: 'invalid', message: 'not a cursor this service gave out' }]);
  return id;
}

/**
 * The query for a filter: events older than `before` (an id) when given, newest first, `limit` of
 * them. A user or a client is three conditions (subject, actor, details) that no one index
 * answers together: each is read from its own index (newest first, `limit` at most) and the
 * union sorted, instead of a walk backwards through the whole table.
 */
function selectEvents(filter: AuditFilter, before: number | undefined, limit: number): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  const parties: { prefix: string; detail: string; id: string }[] = [];
  if (filter.userId !== undefined) parties.push({ prefix: 'user', detail: 'userId', id: filter.userId });
  if (filter.clientId !== undefined) parties.push({ prefix: 'client', detail: 'clientId', id: filter.clientId });
  const alternatives = parties.map(({ prefix, detail, id }) => {
    const party = param(`${prefix}:${id}`);
    return [`subject = ${party}`, `actor = ${party}`, `details->>'${detail}' = ${param(id)}`];
  });

  const conditions: string[] = [];
  if (filter.action !== undefined) {
    // A prefix has only [a-z0-9_.] (the schema says so): '_' is LIKE's one wildcard to escape.
    conditions.push(filter.action.endsWith('.') ? `action LIKE ${param(`${filter.action.replaceAll('_', '\\_')}%`)}` : `action = ${param(filter.action)}`);
  }
  if (filter.since) conditions.push(`occurred_at >= ${param(filter.since)}`);
  if (filter.until) conditions.push(`occurred_at < ${param(filter.until)}`);
  if (before !== undefined) conditions.push(`id < ${param(before)}`);
  // A second party (user and client both) is a condition of each branch of the first.
  const [branching, ...others] = alternatives;
  for (const other of others) conditions.push(`(${other.join(' OR ')})`);
  const where = (extra: string[]) => (extra.length ? `WHERE ${extra.join(' AND ')}` : '');
  if (!branching) return { sql: `SELECT ${AUDIT_COLUMNS} FROM audit_events ${where(conditions)} ORDER BY id DESC LIMIT ${limit}`, params };
  const branches = branching.map((condition) => `(SELECT id FROM audit_events ${where([condition, ...conditions])} ORDER BY id DESC LIMIT ${limit})`);
  return { sql: `SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE id IN (${branches.join(' UNION ALL ')}) ORDER BY id DESC LIMIT ${limit}`, params };
}

export function createAuditQuery(database: Database): AuditQuery {
  async function read(filter: AuditFilter, before: number | undefined, limit: number): Promise<AuditEvent[]> {
    const query = selectEvents(filter, before, limit);
    const { rows } = await database.query<AuditRow>(query.sql, query.params);
    return rows.map(toAuditEvent);
  }

  return {
    async page(filterInput, pageInput = {}) {
      const filter = parseInput(auditFilterSchema, filterInput);
      const { limit, cursor } = parseInput(auditPageSchema, pageInput);
      const before = cursor === undefined ? undefined : decodeCursor(cursor);
      // One more than asked tells whether there is a next page.
      const events = await read(filter, before, limit + 1);
      const shown = events.slice(0, limit);
      return { events: shown, nextCursor: events.length > limit ? encodeCursor(shown.at(-1)!.id) : null };
    },

    async *export(filterInput) {
      const filter = parseInput(auditFilterSchema, filterInput);
      let before: number | undefined;
      for (;;) {
        const batch = await read(filter, before, EXPORT_BATCH);
        yield* batch;
        if (batch.length < EXPORT_BATCH) return;
        before = batch.at(-1)!.id;
      }
    },
  };
}

/** An event as the JSON API and the JSON-lines export show it (snake_case, ISO time). */
export function auditEventJson(event: AuditEvent) {
  return {
    id: event.id,
    occurred_at: event.occurredAt.toISOString(),
    actor: event.actor,
    action: event.action,
    subject: event.subject,
    ip: event.ip,
    user_agent: event.userAgent,
    details: event.details,
  };
}
