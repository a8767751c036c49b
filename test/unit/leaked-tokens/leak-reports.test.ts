import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import type { AuditEventInput } from '../../../src/audit/audit-log.ts';
import { tokenFormat } from '../../../src/credentials/token-format.ts';
import { createLeakReports, type EndedCredential, type LeakReport } from '../../../src/leaked-tokens/leak-reports.ts';
import type { ApiSession } from '../../../src/sessions/api-session-store.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { createMemoryEphemeralStore } from '../../../src/store/ephemeral/memory-ephemeral-store.ts';

// The rules of a report, with the services that end credentials recording what they are asked
// (the integration test, test/integration/leaked-tokens.test.ts, runs the real ones): which
// reports reach a lookup at all, what each verdict is, what the owner's event says.

function setUp() {
  const lookups: string[] = [];
  const notices: { userId: string; ended: EndedCredential[] }[] = [];
  const events: AuditEventInput[] = [];
  const logLines: string[] = [];
  const pat = tokenFormat.generate('personal_access_token');
  const live = new Set([tokenFormat.generate('session')]);
  const [session] = live;
  const leakReports = createLeakReports({
    personalTokens: {
      async revokeLeaked(value, by, details) {
        lookups.push(value);
        if (value !== pat) return null;
        events.push({ ...by, action: 'credential.leaked', details });
        return { outcome: 'revoked', tokenId: 't1', userId: 'u1', name: 'ci', hint: value.slice(0, 12) };
      },
    },
    sessions: {
      // A lookup is counted where the session is ended; peeking first is part of that lookup.
      async peek(token) {
        return live.has(token) ? ({ id: 'S1', userId: 'u1' } as ApiSession) : null;
      },
      async endAndReturn(token) {
        lookups.push(token);
        if (!live.delete(token)) return null;
        return { id: 'S1', userId: 'u1' } as ApiSession;
      },
    },
    audit: { record: async (event) => void events.push(event) },
    ephemeral: createMemoryEphemeralStore(),
    endedSessionMemoryMs: 60_000,
    notifyOwner: async (userId, ended) => void notices.push({ userId, ended }),
    logger: createLogger({ level: 'info', destination: new Writable({ write: (chunk: Buffer, _e, done) => (logLines.push(chunk.toString()), done()) }) }),
  });
  return { leakReports, lookups, events, logLines, notices, pat, session: session! };
}

const found = (token: string, extra: Partial<LeakReport> = {}): LeakReport => ({ token, type: 'tessera_token', url: 'https://github.com/o/r/blob/1/f', source: 'content', ...extra });

describe('leak reports', () => {
  it('looks up as an OAuth token only what has its form, never a tsr_ value', async () => {
    const { leakReports } = setUp();
    const asked: string[] = [];
    const withOAuth = createLeakReports({
      personalTokens: { revokeLeaked: async () => null },
      sessions: { peek: async () => null, endAndReturn: async () => null },
      audit: { record: async () => undefined },
      ephemeral: createMemoryEphemeralStore(),
      endedSessionMemoryMs: 60_000,
      oauthTokens: { find: async (value) => void asked.push(value), revokeGrant: async () => undefined, destroy: async () => undefined },
      logger: createLogger({ level: 'fatal', destination: new Writable({ write: (_c, _e, done) => done() }) }),
    });
    const opaque = 'a'.repeat(43);
    const verdicts = await withOAuth.handle('github', [found(opaque), found(`tsr_${'b'.repeat(39)}`), found('c'.repeat(42)), found('eyJhbGciOiJFUzI1NiJ9.e30.c2ln')]);
    expect(verdicts.map((v) => v.label)).toEqual(Array(4).fill('false_positive'));
    expect(asked).toEqual([opaque]);
    // Without OAuth lookups configured, nothing is asked at all.
    expect((await leakReports.handle('github', [found(opaque)]))[0]!.label).toBe('false_positive');
  });

  it('answers a token that fails the checksum, or is no Tessera token, false_positive without a lookup', async () => {
    const { leakReports, lookups, pat } = setUp();
    const mistyped = `${pat.slice(0, 20)}${pat[20] === 'a' ? 'b' : 'a'}${pat.slice(21)}`;
    const session = tokenFormat.generate('session');
    const verdicts = await leakReports.handle('github', [found(mistyped), found(`${session}0`), found('ghp_abc'), found(''), found(session.slice(0, -1))]);
    expect(verdicts.map((v) => v.label)).toEqual(Array(5).fill('false_positive'));
    expect(lookups).toEqual([]);
  });

  it('ends each Tessera token once, answers in order, and remembers an ended session', async () => {
    const { leakReports, lookups, events, notices, pat, session } = setUp();
    const other = tokenFormat.generate('session');
    const verdicts = await leakReports.handle('github', [found(pat), found(session, { type: 'tessera_session' }), found(other)]);
    expect(verdicts).toEqual([
      { token_raw: pat, token_type: 'tessera_token', label: 'true_positive' },
      { token_raw: session, token_type: 'tessera_session', label: 'true_positive' },
      { token_raw: other, token_type: 'tessera_token', label: 'false_positive' },
    ]);
    expect(lookups).toEqual([pat, session, other]);
    expect(events).toEqual([
      { actor: 'reporter:github', action: 'credential.leaked', details: { reporter: 'github', type: 'tessera_token', url: 'https://github.com/o/r/blob/1/f', source: 'content' } },
      {
        actor: 'reporter:github',
        action: 'credential.leaked',
        subject: 'user:u1',
        details: { reporter: 'github', type: 'tessera_session', url: 'https://github.com/o/r/blob/1/f', source: 'content', kind: 'session', userId: 'u1', session: 'S1' },
      },
    ]);
    // The owner is told once, of both.
    expect(notices).toEqual([
      {
        userId: 'u1',
        ended: [
          { kind: 'personal_access_token', name: 'ci', hint: pat.slice(0, 12), url: 'https://github.com/o/r/blob/1/f', source: 'content', reporter: 'github' },
          { kind: 'session', url: 'https://github.com/o/r/blob/1/f', source: 'content', reporter: 'github' },
        ],
      },
    ]);
    // Reported again: the session is gone, but it was Tessera's; nothing more is written or sent.
    expect((await leakReports.handle('github', [found(session)]))[0]!.label).toBe('true_positive');
    expect(events).toHaveLength(2);
    expect(notices).toHaveLength(1);
  });

  it("keeps the report's text printable and bounded in the owner's event, and no token in the log", async () => {
    const { leakReports, events, logLines, session } = setUp();
    await leakReports.handle('github', [found(session, { url: `https://x.example/\u0000\u001b[31m${'a'.repeat(5000)}`, source: 'issue_comment\n' })]);
    const details = events[0]!.details!;
    expect(details.url).toBe(`https://x.example/[31m${'a'.repeat(2048 - 'https://x.example/[31m'.length)}`);
    expect(details.source).toBe('issue_comment');
    expect(logLines.join('')).not.toContain(session);
  });
});
