import type { Database, Queryable } from '../store/sql/database.ts';

export interface AuditEventInput {
  /** Who did it: "user:<id>", "cli:<os user>", "system", "client:<id>". */
  actor: string;
  /** What happened, dotted: "user.created", "token.revoked", "login.failed". */
  action: string;
  /** What it happened to: "user:<id>", "token:<id>". */
  subject?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  /** Never a secret: no passwords, no token values. */
  details?: Record<string, unknown>;
}

export interface AuditEvent extends Required<Omit<AuditEventInput, 'details'>> {
  id: number;
  occurredAt: Date;
  details: Record<string, unknown>;
}

export interface AuditLog {
  record(event: AuditEventInput, connection?: Queryable): Promise<void>;
  /** Newest first: events whose subject or actor is `party`. */
  listFor(party: string, options: { limit: number; before?: number }): Promise<AuditEvent[]>;
  /**
   * Newest first: everything about a user's account — what they did, what was done to them, and
   * events on their credentials (which name the owner in details.userId).
   */
  listForUser(userId: string, options: { limit: number; before?: number }): Promise<AuditEvent[]>;
}

interface AuditRow {
  id: number;
  occurred_at: Date;
  actor: string;
  action: string;
  subject: string | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
}

export function createAuditLog(database: Database): AuditLog {
  return {
    async record(event, connection = database) {
      await connection.query(
        'INSERT INTO audit_events (actor, action, subject, ip, user_agent, details) VALUES ($1, $2, $3, $4, $5, $6)',
        [event.actor, event.action, event.subject ?? null, event.ip ?? null, event.userAgent?.slice(0, 512) ?? null, JSON.stringify(event.details ?? {})],
      );
    },
    async listFor(party, { limit, before }) {
      const { rows } = await database.query<AuditRow>(
        `SELECT id, occurred_at, actor, action, subject, ip, user_agent, details FROM audit_events
         WHERE (subject = $1 OR actor = $1) AND ($3::bigint IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $2`,
        [party, limit, before ?? null],
      );
      return rows.map(toEvent);
    },
    async listForUser(userId, { limit, before }) {
      const party = `user:${userId}`;
      const { rows } = await database.query<AuditRow>(
        `SELECT id, occurred_at, actor, action, subject, ip, user_agent, details FROM audit_events
         WHERE (subject = $1 OR actor = $1 OR details->>'userId' = $4) AND ($3::bigint IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $2`,
        [party, limit, before ?? null, userId],
      );
      return rows.map(toEvent);
    },
  };
}

function toEvent(row: AuditRow): AuditEvent {
  return {
    id: row.id,
    occurredAt: row.occurred_at,
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    ip: row.ip,
    userAgent: row.user_agent,
    details: row.details,
  };
}
