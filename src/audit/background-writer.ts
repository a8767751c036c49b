import type { Logger } from 'pino';
import type { AuditEventInput, BackgroundRecordOptions } from './audit-log.ts';

// Audit writes the caller does not wait for (docs/audit.md, "Recording"). A sign-in answers at
// the same pace whether or not its event is written, and a failed write is logged with the whole
// event rather than thrown at the sign-in. Events wait in one queue, written in order by one
// writer a batch (one INSERT) at a time: the hot paths never hold more than one of the pool's
// connections for the audit log, however many sign-ins arrive. Events anyone can cause without an
// account (failed sign-ins, lockouts) are written within a per-minute budget per process; beyond
// it, or while the queue is long, they are counted by action and written as one
// `audit.suppressed` event when the minute ends, so a flood costs one row a minute, not one a try.

export interface BackgroundWriterOptions {
  /** Writes the events in one statement, in this order. */
  writeMany(events: AuditEventInput[]): Promise<void>;
  logger: Logger;
  /** Untrusted events written per minute at most (default 600). */
  untrustedPerMinute?: number;
  /** Queued events beyond which untrusted events are suppressed too (default 200). */
  maxPending?: number;
  /** Queued events beyond which even trusted ones are not kept, only logged (default 10 000). */
  maxQueue?: number;
  /** Events written in one statement at most (default 100). */
  batchSize?: number;
  /** Milliseconds since the epoch (default Date.now). */
  clock?: () => number;
}

const WINDOW_MS = 60_000;

/** A write's error without PostgreSQL's `detail`, which quotes the failing row (the event, name and all). */
function withoutRow(error: unknown): { type: string; message: string; code?: string } {
  const { name = 'Error', message = String(error), code } = (error ?? {}) as { name?: string; message?: string; code?: unknown };
  return { type: name, message, ...(typeof code === 'string' ? { code } : {}) };
}

/**
 * The event as the log line of a failed write carries it: whole, but for the name an unknown-user
 * sign-in gave, which may be a password typed into the wrong field (logs reach more people than
 * the audit log does).
 */
function forTheLog(event: AuditEventInput): AuditEventInput {
  if (!event.details || !('username' in event.details)) return event;
  const { username: _username, ...details } = event.details;
  return { ...event, details: { ...details, usernameOmitted: true } };
}

export function createBackgroundWriter(options: BackgroundWriterOptions) {
  const { writeMany, logger } = options;
  const clock = options.clock ?? Date.now;
  const budget = options.untrustedPerMinute ?? 600;
  const maxPending = options.maxPending ?? 200;
  const maxQueue = options.maxQueue ?? 10_000;
  const batchSize = options.batchSize ?? 100;
  const queue: AuditEventInput[] = [];
  /** The writer while it runs; it stops when the queue is empty. */
  let writing: Promise<void> | undefined;
  const window = { start: Number.NEGATIVE_INFINITY, written: 0 };
  /** Suppressed events by action since `since`. */
  let suppressed: { since: number; counts: Record<string, number> } | undefined;
  let summaryTimer: ReturnType<typeof setTimeout> | undefined;

  const lost = (error: unknown, event: AuditEventInput) => logger.error({ err: withoutRow(error), auditEvent: forTheLog(event) }, 'could not write an audit event');

  /** One batch; when it fails, each of its events alone, so that one bad event costs only itself. */
  async function writeBatch(batch: AuditEventInput[]): Promise<void> {
    try {
      await writeMany(batch);
    } catch (error) {
      if (batch.length === 1) return lost(error, batch[0]!);
      for (const event of batch) {
        try {
          await writeMany([event]);
        } catch (alone) {
          lost(alone, event);
        }
      }
    }
  }

  async function drain(): Promise<void> {
    while (queue.length > 0) await writeBatch(queue.splice(0, batchSize));
    writing = undefined;
  }

  /** `always`: past maxQueue too (the summary of what was suppressed, one a minute at most). */
  function enqueue(event: AuditEventInput, always = false): void {
    if (queue.length >= maxQueue && !always) {
      lost(new Error(`${maxQueue} audit events are already waiting to be written`), event);
      return;
    }
    queue.push(event);
    writing ??= drain();
  }

  /** Writes the summary of what was suppressed (and logs it), if anything was. */
  function summarise(): void {
    if (summaryTimer) clearTimeout(summaryTimer);
    summaryTimer = undefined;
    if (!suppressed) return;
    const { since, counts } = suppressed;
    suppressed = undefined;
    const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
    logger.warn({ suppressed: counts, total }, 'audit events over the per-minute budget were counted, not written one by one');
    enqueue({ actor: 'system', action: 'audit.suppressed', details: { counts, total, from: new Date(since).toISOString(), until: new Date(clock()).toISOString() } }, true);
  }

  function suppress(event: AuditEventInput, now: number): void {
    suppressed ??= { since: now, counts: {} };
    suppressed.counts[event.action] = (suppressed.counts[event.action] ?? 0) + 1;
    summaryTimer ??= setTimeout(summarise, Math.max(0, window.start + WINDOW_MS - now)).unref();
  }

  return {
    write(event: AuditEventInput, { untrusted = false }: BackgroundRecordOptions = {}): void {
      if (untrusted) {
        const now = clock();
        if (now - window.start >= WINDOW_MS) {
          window.start = now;
          window.written = 0;
        }
        if (window.written >= budget || queue.length >= maxPending) {
          suppress(event, now);
          return;
        }
        window.written++;
      }
      enqueue(event);
    },

    /** Writes the pending summary now and waits until the queue is written. */
    async settled(): Promise<void> {
      summarise();
      while (writing) await writing;
    },
  };
}
