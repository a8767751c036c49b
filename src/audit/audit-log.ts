import type { Logger } from 'pino';
import type { Database, Queryable } from '../store/sql/database.ts';
import { createBackgroundWriter, type BackgroundWriterOptions } from './background-writer.ts';

// What happened to accounts and credentials, for operators (tessera audit, the admin API) and for
// each user's security page. The actions, their actors and details: docs/audit.md.

export interface AuditEventInput {
  /** Who did it: "user:<id>", "client:<id>", "cli:<os user>", "ip:<address>" (not signed in), "reporter:<name>" (a secret scanner), "system". */
  actor: string;
  /** What happened, dotted: "user.created", "sign_in.failed", "oauth.token_revoked". */
  action: string;
  /** What it happened to: "user:<id>", "token:<id>", "client:<id>". */
  subject?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  /** Never a secret: no passwords, no token values. `userId` and `clientId` here are found by the query filters. */
  details?: Record<string, unknown>;
}

export interface AuditEvent extends Required<Omit<AuditEventInput, 'details'>> {
  id: number;
  occurredAt: Date;
  details: Record<string, unknown>;
}

export interface BackgroundRecordOptions {
  /**
   * Anyone can cause it (a failed sign-in, a denial without signing in): written within a
   * per-minute budget, the rest counted and summarised in one `audit.suppressed` event.
   */
  untrusted?: boolean;
}

export interface AuditLog {
  /** Writes the event, on `connection` when given (inside the caller's transaction). */
  record(event: AuditEventInput, connection?: Queryable): Promise<void>;
  /**
   * Writes the event without making the caller wait (sign-ins, OAuth events): a failed write is
   * logged with the event, never thrown, and never lost silently.
   */
  recordInBackground(event: AuditEventInput, options?: BackgroundRecordOptions): void;
  /** Resolves once every background write has ended (before the database closes). */
  settled(): Promise<void>;
  /** Newest first: events whose subject or actor is `party`. */
  listFor(party: string, options: { limit: number; before?: number }): Promise<AuditEvent[]>;
}

export interface AuditRow {
  id: number | string;
  occurred_at: Date;
  actor: string;
  action: string;
  subject: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
}

export const AUDIT_COLUMNS = 'id, occurred_at, actor, action, subject, ip, user_agent, details';

/** Longest user agent kept: enough to tell browsers and tools apart. */
const MAX_USER_AGENT = 512;

export interface AuditLogOptions extends Omit<BackgroundWriterOptions, 'writeMany' | 'logger'> {
  /** Where failed background writes and suppressed events are reported (default: nowhere but stderr). */
  logger?: Logger;
}

export function createAuditLog(database: Database, options: AuditLogOptions = {}): AuditLog {
  const row = (event: AuditEventInput) => [event.actor, event.action, event.subject ?? null, event.ip ?? null, event.userAgent?.slice(0, MAX_USER_AGENT) ?? null, JSON.stringify(event.details ?? {})];
  const insert = async (event: AuditEventInput, connection: Queryable = database) => {
    await connection.query('INSERT INTO audit_events (actor, action, subject, ip, user_agent, details) VALUES ($1, $2, $3, $4, $5, $6)', row(event));
  };
  /** Several events in one statement; their ids follow their order. */
  const insertMany = async (events: AuditEventInput[]) => {
    const values = events.map((_, i) => `(${[1, 2, 3, 4, 5, 6].map((n) => `$${i * 6 + n}`).join(', ')})`);
    await database.query(`INSERT INTO audit_events (actor, action, subject, ip, user_agent, details) VALUES ${values.join(', ')}`, events.flatMap(row));
  };
  const background = createBackgroundWriter({ ...options, writeMany: insertMany, logger: options.logger ?? stderrLogger });

  return {
    record: insert,
    recordInBackground: background.write,
    settled: background.settled,
    async listFor(party, { limit, before }) {
      const { rows } = await database.query<AuditRow>(
        `SELECT ${AUDIT_COLUMNS} FROM audit_events
         WHERE (subject = $1 OR actor = $1) AND ($3::bigint IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $2`,
        [party, limit, before ?? null],
      );
      return rows.map(toAuditEvent);
    },
  };
}

/** Used only when no logger is given (tests of the store): a failed write still shows. */
const stderrLogger = {
  warn: (fields: object, message: string) => process.stderr.write(`${message} ${JSON.stringify(fields)}\n`),
  error: (fields: object, message: string) => process.stderr.write(`${message} ${JSON.stringify(fields)}\n`),
} as unknown as Logger;

export function toAuditEvent(row: AuditRow): AuditEvent {
  return {
    id: Number(row.id),
    occurredAt: row.occurred_at,
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    ip: row.ip,
    userAgent: row.user_agent,
    details: row.details,
  };
}
