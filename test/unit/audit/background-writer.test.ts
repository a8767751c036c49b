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

describe('background audit writes', () => {
  it('never throws at the caller: a failed write is logged with the event, minus the name an unknown user gave', async () => {
    const { logger, lines } = capturedLogger();
    const writer = createBackgroundWriter({
      logger,
      write: async () => {
        throw Object.assign(new Error('the database refused it'), { code: '23514', detail: 'Failing row contains (… "username": "hunter2-typed-here" …)' });
      },
    });
    expect(() => writer.write({ actor: 'ip:192.0.2.1', action: 'sign_in.failed', details: { via: 'api', reason: 'unknown_user', username: 'hunter2-typed-here' } }, { untrusted: true })).not.toThrow();
    await writer.settled();
    const logged = lines.find((line) => line.msg === 'could not write an audit event');
    expect(logged).toMatchObject({ err: { message: 'the database refused it', code: '23514' }, auditEvent: { action: 'sign_in.failed', details: { reason: 'unknown_user', usernameOmitted: true } } });
    expect(JSON.stringify(lines)).not.toContain('hunter2-typed-here');
  });

  it('keeps untrusted events within the budget per minute and summarises the rest once the minute ends', async () => {
    const { logger, lines } = capturedLogger();
    const written: AuditEventInput[] = [];
    let now = 1_000_000;
    const writer = createBackgroundWriter({ logger, untrustedPerMinute: 2, clock: () => now, write: async (event) => void written.push(event) });
    for (let i = 0; i < 5; i++) writer.write({ actor: 'ip:192.0.2.1', action: 'sign_in.failed' }, { untrusted: true });
    writer.write({ actor: 'ip:192.0.2.1', action: 'sign_in.locked' }, { untrusted: true });
    // Trusted events are never held back.
    writer.write({ actor: 'user:1', action: 'sign_in.succeeded' });
    await Promise.resolve();
    expect(written.map((e) => e.action)).toEqual(['sign_in.failed', 'sign_in.failed', 'sign_in.succeeded']);
    // A new minute: the budget is back.
    now += 60_000;
    writer.write({ actor: 'ip:192.0.2.1', action: 'sign_in.failed' }, { untrusted: true });
    await writer.settled();
    const summary = written.find((e) => e.action === 'audit.suppressed');
    expect(summary).toMatchObject({ actor: 'system', details: { counts: { 'sign_in.failed': 3, 'sign_in.locked': 1 }, total: 4 } });
    expect(written.filter((e) => e.action === 'sign_in.failed')).toHaveLength(3);
    expect(lines.find((line) => line.msg?.toString().includes('per-minute budget'))).toMatchObject({ total: 4 });
  });

  it('holds untrusted events back while too many writes are in flight', async () => {
    const { logger } = capturedLogger();
    const release: (() => void)[] = [];
    const written: string[] = [];
    const writer = createBackgroundWriter({ logger, maxPending: 2, write: (event) => new Promise<void>((resolve) => release.push(() => (written.push(event.action), resolve()))) });
    writer.write({ actor: 'user:1', action: 'sign_in.succeeded' });
    writer.write({ actor: 'user:2', action: 'sign_in.succeeded' });
    writer.write({ actor: 'ip:192.0.2.1', action: 'sign_in.failed' }, { untrusted: true });
    expect(release).toHaveLength(2);
    const settled = writer.settled();
    // The summary of the held-back event joins the writes in flight.
    expect(release).toHaveLength(3);
    while (release.length) release.shift()!();
    await settled;
    expect(written).toEqual(['sign_in.succeeded', 'sign_in.succeeded', 'audit.suppressed']);
  });
});
