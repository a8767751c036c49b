import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { AuditEventInput } from '../../../src/audit/audit-log.ts';
import { createBackgroundWriter } from '../../../src/audit/background-writer.ts';

/** A real pino logger into memory. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

const failed = (n: number): AuditEventInput => ({ actor: 'ip:192.0.2.1', action: 'sign_in.failed', details: { n } });

describe('background audit writes', () => {
  it('never throws at the caller: a failed write is logged with the event, minus the name an unknown user gave', async () => {
    const { logger, lines } = capturedLogger();
    const writer = createBackgroundWriter({
      logger,
      writeMany: async () => {
        throw Object.assign(new Error('the database refused it'), { code: '23514', detail: 'Failing row contains (… "username": "hunter2-typed-here" …)' });
      },
    });
    expect(() => writer.write({ actor: 'ip:192.0.2.1', action: 'sign_in.failed', details: { via: 'api', reason: 'unknown_user', username: 'hunter2-typed-here' } }, { untrusted: true })).not.toThrow();
    await writer.settled();
    const logged = lines.find((line) => line.msg === 'could not write an audit event');
    expect(logged).toMatchObject({ err: { message: 'the database refused it', code: '23514' }, auditEvent: { action: 'sign_in.failed', details: { reason: 'unknown_user', usernameOmitted: true } } });
    expect(JSON.stringify(lines)).not.toContain('hunter2-typed-here');
  });

  it('writes in order, one batch at a time, and a bad event in a batch costs only itself', async () => {
    const { logger, lines } = capturedLogger();
    const statements: number[][] = [];
    let running = 0;
    let mostAtOnce = 0;
    const writer = createBackgroundWriter({
      logger,
      batchSize: 3,
      writeMany: async (events) => {
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        await new Promise((resolve) => setImmediate(resolve));
        running--;
        if (events.some((e) => e.details?.n === 4)) throw new Error('refused');
        statements.push(events.map((e) => e.details!.n as number));
      },
    });
    for (let n = 0; n < 8; n++) writer.write(failed(n));
    await writer.settled();
    expect(mostAtOnce).toBe(1);
    // 0 alone (the writer starts at once), then batches of three; 4's batch is retried event by event.
    expect(statements).toEqual([[0], [1, 2, 3], [5], [6], [7]]);
    expect(lines.filter((line) => line.msg === 'could not write an audit event').map((line) => (line.auditEvent as AuditEventInput).details!.n)).toEqual([4]);
  });

  it('keeps untrusted events within the budget per minute and summarises the rest once the minute ends', async () => {
    const { logger, lines } = capturedLogger();
    const written: AuditEventInput[] = [];
    let now = 1_000_000;
    const writer = createBackgroundWriter({ logger, untrustedPerMinute: 2, clock: () => now, writeMany: async (events) => void written.push(...events) });
    for (let i = 0; i < 5; i++) writer.write(failed(i), { untrusted: true });
    writer.write({ actor: 'ip:192.0.2.1', action: 'sign_in.locked' }, { untrusted: true });
    // Trusted events are never held back.
    writer.write({ actor: 'user:1', action: 'sign_in.succeeded' });
    await writer.settled();
    expect(written.slice(0, 3).map((e) => e.action)).toEqual(['sign_in.failed', 'sign_in.failed', 'sign_in.succeeded']);
    // settled() wrote the summary of the minute so far.
    expect(written[3]).toMatchObject({ actor: 'system', action: 'audit.suppressed', details: { counts: { 'sign_in.failed': 3, 'sign_in.locked': 1 }, total: 4 } });
    expect(lines.find((line) => String(line.msg).includes('per-minute budget'))).toMatchObject({ total: 4 });
    // A new minute: the budget is back.
    now += 60_000;
    writer.write(failed(9), { untrusted: true });
    await writer.settled();
    expect(written.at(-1)).toMatchObject({ action: 'sign_in.failed', details: { n: 9 } });
  });

  it('holds untrusted events back while the queue is long, and keeps no more than maxQueue at all', async () => {
    const { logger, lines } = capturedLogger();
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const written: string[] = [];
    const writer = createBackgroundWriter({ logger, maxPending: 2, maxQueue: 3, writeMany: async (events) => {
      await blocked;
      written.push(...events.map((e) => e.action));
    } });
    // The first is being written; two wait: the queue is at maxPending.
    writer.write({ actor: 'user:1', action: 'a' });
    writer.write({ actor: 'user:1', action: 'b' });
    writer.write({ actor: 'user:1', action: 'c' });
    writer.write(failed(1), { untrusted: true });
    writer.write({ actor: 'user:1', action: 'd' });
    // Past maxQueue even a trusted event is only logged.
    writer.write({ actor: 'user:1', action: 'e' });
    release();
    await writer.settled();
    expect(written).toEqual(['a', 'b', 'c', 'd', 'audit.suppressed']);
    expect(lines.find((line) => line.msg === 'could not write an audit event')).toMatchObject({ auditEvent: { action: 'e' }, err: { message: '3 audit events are already waiting to be written' } });
  });
});
