import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createApiSessionStore, type ApiSession, type ApiSessionStore, type NewApiSession } from '../../src/sessions/api-session-store.ts';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { RANDOM_LENGTH, TOKEN_PREFIXES, tokenFormat } from '../../src/credentials/token-format.ts';
import { dumpWrittenKeys, recording, slotPart, type StoreCall, type StoredKey } from '../support/stored-keys.ts';

export type { StoredKey };

export interface ApiSessionStoreFixture {
  store: EphemeralStore;
  /**
   * The clock given to the session store (milliseconds since the epoch). The in-process store
   * shares it; Redis keeps real time, so there expiry decisions must come from this clock.
   */
  clock: () => number;
  /** Moves that clock forward. */
  advance: (ms: number) => void;
  /**
   * Every key the backend holds for this fixture, read from the backend itself (Redis: SCAN).
   * Without it, the suite lists the keys written through the store and asks the store for each.
   */
  dump?: () => Promise<StoredKey[]>;
  /** Closes the store and removes everything written. */
  cleanup: () => Promise<void>;
}

const SECOND = 1000;
const IDLE_SECONDS = 3600;
const ABSOLUTE_SECONDS = 86_400;

/** Runs `task` after `turns` turns of the microtask queue. */
async function after<T>(turns: number, task: () => Promise<T>): Promise<T> {
  for (let i = 0; i < turns; i += 1) await Promise.resolve();
  return task();
}

/**
 * What the API session store must do on every ephemeral store. `open` is called once per test and
 * gives a fresh, empty store with an injected clock.
 */
export function describeApiSessionStoreContract(name: string, open: () => Promise<ApiSessionStoreFixture>) {
  describe(`API session store contract: ${name}`, () => {
    let fixture: ApiSessionStoreFixture;
    let calls: StoreCall[];
    let sessions: ApiSessionStore;
    let start: number;

    beforeEach(async () => {
      fixture = await open();
      calls = [];
      sessions = createApiSessionStore(recording(fixture.store, calls), {
        idleTimeoutSeconds: IDLE_SECONDS,
        absoluteTimeoutSeconds: ABSOLUTE_SECONDS,
        clock: fixture.clock,
      });
      start = fixture.clock();
    });
    afterEach(async () => {
      try {
        // Cluster safety: a command on several keys must keep them in one slot.
        const crossSlot = calls.filter((c) => new Set(c.keys.map(slotPart)).size > 1);
        expect(crossSlot).toEqual([]);
      } finally {
        await fixture.cleanup();
      }
    });

    const advanceSeconds = (seconds: number) => fixture.advance(seconds * SECOND);
    const at = (seconds: number) => new Date(start + seconds * SECOND);

    function login(userId: string, overrides: Partial<NewApiSession> = {}) {
      return sessions.create({ userId, scopes: ['repository:read'], ip: '192.0.2.7', userAgent: 'curl/8.5', ...overrides });
    }

    /** Every key the backend holds, from the backend where the fixture can read it. */
    async function dump(): Promise<StoredKey[]> {
      return fixture.dump ? fixture.dump() : dumpWrittenKeys(fixture.store, calls);
    }

    /** Keys whose name or value mentions the text. */
    async function keysMentioning(text: string): Promise<StoredKey[]> {
      return (await dump()).filter((k) => k.key.includes(text) || k.values.some((v) => v.includes(text)));
    }

    describe('create', () => {
      it('returns a session token and the session it opened', async () => {
        const { token, session } = await login('user-1', { scopes: ['repository:read', 'repository:write'] });
        expect(tokenFormat.parse(token)).toBe('session');
        expect(token.startsWith(TOKEN_PREFIXES.session)).toBe(true);
        expect(session).toEqual({
          id: expect.stringMatching(/^[0-9A-Za-z]{16}$/),
          userId: 'user-1',
          scopes: ['repository:read', 'repository:write'],
          createdAt: at(0),
          lastSeenAt: at(0),
          expiresAt: at(IDLE_SECONDS),
          absoluteExpiresAt: at(ABSOLUTE_SECONDS),
          expiring: true,
          ip: '192.0.2.7',
          userAgent: 'curl/8.5',
        });
        expect(await sessions.peek(token)).toEqual(session);
        const other = await login('user-1', { ip: null, userAgent: null });
        expect(other.token).not.toBe(token);
        expect(other.session.id).not.toBe(session.id);
        expect(other.session).toMatchObject({ ip: null, userAgent: null });
      });

      it('stores the token only as its digest, nowhere in a key or a value', async () => {
        const created = await Promise.all([login('user-1'), login('user-1'), login('user-2')]);
        for (const { token } of created) await sessions.authenticate(token);
        const held = await dump();
        expect(held.length).toBeGreaterThan(0);
        for (const { token } of created) {
          const random = token.slice(TOKEN_PREFIXES.session.length, TOKEN_PREFIXES.session.length + RANDOM_LENGTH);
          for (const stored of held) {
            expect(stored.key).not.toContain(random);
            for (const value of stored.values) expect(value).not.toContain(random);
          }
          // Nor did the token pass through the store in any call.
          expect(JSON.stringify(calls.map((c) => c.args))).not.toContain(random);
          // What is kept is the digest.
          expect(await keysMentioning(tokenFormat.digest(token))).not.toEqual([]);
        }
      });

      it('gives every key it writes a TTL, none beyond the absolute limit, and leaves none behind', async () => {
        const first = await login('user-1');
        advanceSeconds(600);
        const second = await login('user-1');
        advanceSeconds(600);
        await sessions.authenticate(first.token);
        const held = await dump();
        for (const key of held) {
          expect([key.key, key.ttlMs > 0 && key.ttlMs <= ABSOLUTE_SECONDS * SECOND]).toEqual([key.key, true]);
        }
        // The keys holding a session (its record and its id) live as long as it may stay idle;
        // those of the session just used were given the whole idle timeout again.
        const firstKeys = await keysMentioning(first.session.id);
        const secondKeys = await keysMentioning(second.session.id);
        expect(firstKeys).toHaveLength(2);
        expect(secondKeys).toHaveLength(2);
        for (const key of firstKeys) {
          expect([key.key, key.ttlMs > (IDLE_SECONDS - 60) * SECOND && key.ttlMs <= IDLE_SECONDS * SECOND]).toEqual([key.key, true]);
        }
        for (const key of secondKeys) expect([key.key, key.ttlMs <= IDLE_SECONDS * SECOND]).toEqual([key.key, true]);
        // The user's index outlives every session in it.
        const index = held.filter((k) => k.values.includes(tokenFormat.digest(first.token)) && k.values.includes(tokenFormat.digest(second.token)));
        expect(index).toHaveLength(1);
        expect(index[0]!.ttlMs).toBeGreaterThan((ABSOLUTE_SECONDS - 1200 - 60) * SECOND);
        expect(held).toHaveLength(5);

        expect(await sessions.endAllForUser('user-1')).toBe(2);
        expect(await dump()).toEqual([]);
      });
    });

    describe('authenticate', () => {
      it('answers the session and slides its idle expiry with each use', async () => {
        const { token, session } = await login('user-1');
        advanceSeconds(3000);
        const touched = await sessions.authenticate(token);
        expect(touched).toEqual({ ...session, lastSeenAt: at(3000), expiresAt: at(3000 + IDLE_SECONDS) });
        expect(await sessions.peek(token)).toEqual(touched);
        // Past the first expiry (3600 s), alive because it slid.
        advanceSeconds(3000);
        expect(await sessions.authenticate(token)).toMatchObject({ id: session.id, lastSeenAt: at(6000), expiresAt: at(6000 + IDLE_SECONDS) });
        advanceSeconds(IDLE_SECONDS + 1);
        expect(await sessions.authenticate(token)).toBeNull();
        expect(await sessions.peek(token)).toBeNull();
        expect(await sessions.listForUser('user-1')).toEqual([]);
      });

      it('ends a session exactly at its idle timeout', async () => {
        const { token } = await login('user-1');
        advanceSeconds(IDLE_SECONDS - 1);
        expect(await sessions.authenticate(token)).not.toBeNull();
        advanceSeconds(IDLE_SECONDS);
        expect(await sessions.authenticate(token)).toBeNull();
      });

      it('refuses a session past its absolute limit, however active', async () => {
        const { token, session } = await login('user-1');
        let elapsed = 0;
        while (elapsed + 3000 < ABSOLUTE_SECONDS) {
          advanceSeconds(3000);
          elapsed += 3000;
          expect([elapsed, await sessions.authenticate(token)]).toEqual([elapsed, expect.objectContaining({ id: session.id })]);
        }
        advanceSeconds(ABSOLUTE_SECONDS - 1 - elapsed);
        // Within the last hour the idle expiry is capped by the absolute limit.
        expect(await sessions.authenticate(token)).toMatchObject({ expiresAt: at(ABSOLUTE_SECONDS), absoluteExpiresAt: at(ABSOLUTE_SECONDS) });
        advanceSeconds(1);
        expect(await sessions.authenticate(token)).toBeNull();
        expect(await sessions.peek(token)).toBeNull();
        expect(await sessions.endByToken(token)).toBe(false);
      });

      it('refuses malformed, mistyped and other kinds of token without a lookup', async () => {
        const { token } = await login('user-1');
        const mistyped = token.slice(0, 10) + (token[10] === 'a' ? 'b' : 'a') + token.slice(11);
        const checksumOff = token.slice(0, -1) + (token.at(-1) === 'a' ? 'b' : 'a');
        const pat = tokenFormat.generate('personal_access_token');
        const before = calls.length;
        for (const bad of ['', 'not-a-token', token.slice(0, -1), `${token}x`, mistyped, checksumOff, pat, token.toUpperCase()]) {
          expect([bad, await sessions.authenticate(bad)]).toEqual([bad, null]);
          expect([bad, await sessions.peek(bad)]).toEqual([bad, null]);
          expect([bad, await sessions.endByToken(bad)]).toEqual([bad, false]);
        }
        expect(calls.slice(before)).toEqual([]);
        // A well-formed session token that was never issued is looked up and found wanting.
        expect(await sessions.authenticate(tokenFormat.generate('session'))).toBeNull();
        expect(await sessions.authenticate(token)).not.toBeNull();
      });

      it('never brings back a session ended while requests were using it', async () => {
        for (let round = 0; round < 5; round += 1) {
          const { token } = await login('user-1');
          advanceSeconds(1);
          // Requests start a few turns apart, so that some read the session before it ends and
          // write it back (touch) after it ended.
          const from = calls.length;
          let ended = false;
          const ending = after(2, () => sessions.endByToken(token)).finally(() => {
            ended = true;
          });
          // Some touches a few microtask turns apart (the in-process store answers within those),
          // then one per event-loop turn until the end is through (Redis answers between those).
          const touches = Array.from({ length: 40 }, (_, i) => after(i, () => sessions.authenticate(token)));
          while (!ended) {
            touches.push(sessions.authenticate(token));
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
          await Promise.all(touches);
          expect(await ending).toBe(true);
          // The race did happen: a touch wrote the session after the end had begun deleting it.
          const race = calls.slice(from);
          const firstDelete = race.findIndex((c) => c.op === 'del');
          expect(race.slice(firstDelete).some((c) => c.op === 'set')).toBe(true);
          expect(await sessions.authenticate(token)).toBeNull();
          expect(await sessions.peek(token)).toBeNull();
          expect(await keysMentioning(tokenFormat.digest(token))).toEqual([]);
        }
        expect(await sessions.listForUser('user-1')).toEqual([]);
      });
    });

    describe('non-expiring sessions (expiring=false)', () => {
      const WEEK = 7 * 86_400;

      it('have no idle timeout and end at their own limit, past the absolute timeout, used or not', async () => {
        const { token, session } = await login('user-1', { nonExpiringSeconds: WEEK });
        expect(session).toMatchObject({ expiring: false, expiresAt: at(WEEK), absoluteExpiresAt: at(WEEK) });
        const used = await login('user-1', { nonExpiringSeconds: WEEK });
        advanceSeconds(2 * ABSOLUTE_SECONDS); // unused far past the idle and the absolute timeout
        expect(await sessions.peek(token)).toMatchObject({ expiring: false, expiresAt: at(WEEK) });
        expect(await sessions.authenticate(used.token)).toMatchObject({ expiresAt: at(WEEK) });
        expect((await sessions.listForUser('user-1')).map((s) => s.id).sort()).toEqual([session.id, used.session.id].sort());
        advanceSeconds(WEEK - 2 * ABSOLUTE_SECONDS);
        expect(await sessions.authenticate(token)).toBeNull();
        expect(await sessions.authenticate(used.token)).toBeNull();
        expect(await sessions.listForUser('user-1')).toEqual([]);
      });
    });

    describe('peek', () => {
      it('answers the session without sliding it', async () => {
        const { token, session } = await login('user-1');
        advanceSeconds(3000);
        expect(await sessions.peek(token)).toEqual(session);
        expect(await sessions.peek(token)).toEqual(session);
        advanceSeconds(IDLE_SECONDS - 3000);
        // Had either peek slid the session, it would still be live.
        expect(await sessions.peek(token)).toBeNull();
        expect(await sessions.authenticate(token)).toBeNull();
      });

      it('answers by the digest of the token too, without sliding it, and nothing once it ended', async () => {
        const { token, session } = await login('user-1');
        const digest = tokenFormat.digest(token);
        advanceSeconds(3000);
        expect(await sessions.peekByDigest(digest)).toEqual(session);
        expect(await sessions.peekByDigest(tokenFormat.digest(tokenFormat.generate('session')))).toBeNull();
        expect(await sessions.endByToken(token)).toBe(true);
        expect(await sessions.peekByDigest(digest)).toBeNull();
      });
    });

    describe('listForUser', () => {
      it('lists the live sessions of that user only, newest first, and forgets the dead ones', async () => {
        const oldest = await login('user-1');
        advanceSeconds(1000);
        const middle = await login('user-1', { scopes: ['a'] });
        await login('user-2');
        advanceSeconds(1000);
        const newest = await login('user-1', { userAgent: 'tessera-cli/1.0' });
        advanceSeconds(1000);
        await sessions.authenticate(middle.token);
        await sessions.authenticate(newest.token);
        advanceSeconds(700); // oldest: idle 3700 s
        const listed = await sessions.listForUser('user-1');
        expect(listed.map((s) => s.id)).toEqual([newest.session.id, middle.session.id]);
        expect(listed[0]).toEqual({ ...newest.session, lastSeenAt: at(3000), expiresAt: at(3000 + IDLE_SECONDS) });
        expect(listed[1]).toMatchObject({ scopes: ['a'], createdAt: at(1000) });
        expect(await keysMentioning(tokenFormat.digest(oldest.token))).toEqual([]);
        expect((await sessions.listForUser('user-2')).map((s: ApiSession) => s.userId)).toEqual(['user-2']);
        expect(await sessions.listForUser('nobody')).toEqual([]);
      });

      it('does not slide the sessions it lists', async () => {
        const { token } = await login('user-1');
        advanceSeconds(3000);
        expect(await sessions.listForUser('user-1')).toHaveLength(1);
        advanceSeconds(600);
        expect(await sessions.authenticate(token)).toBeNull();
      });
    });

    describe('ending sessions', () => {
      it('end() ends one session of the user by its id, never another user\'s', async () => {
        const mine = await login('user-1');
        const kept = await login('user-1');
        const theirs = await login('user-2');
        expect(await sessions.end('user-1', theirs.session.id)).toBe(false);
        expect(await sessions.authenticate(theirs.token)).not.toBeNull();
        expect(await sessions.end('user-1', mine.session.id)).toBe(true);
        expect(await sessions.authenticate(mine.token)).toBeNull();
        expect(await sessions.end('user-1', mine.session.id)).toBe(false);
        expect(await sessions.end('user-1', 'AAAAAAAAAAAAAAAA')).toBe(false);
        expect(await sessions.end('user-1', '../{x}')).toBe(false);
        expect(await sessions.end('user-1', mine.token)).toBe(false);
        expect((await sessions.listForUser('user-1')).map((s) => s.id)).toEqual([kept.session.id]);
        expect(await sessions.authenticate(kept.token)).not.toBeNull();
        expect(await keysMentioning(tokenFormat.digest(mine.token))).toEqual([]);
        expect(await keysMentioning(mine.session.id)).toEqual([]);
      });

      it('end() answers false for a session that has expired', async () => {
        const { session } = await login('user-1');
        advanceSeconds(IDLE_SECONDS);
        expect(await sessions.end('user-1', session.id)).toBe(false);
      });

      it('endByToken() ends the session of the token', async () => {
        const { token, session } = await login('user-1');
        const other = await login('user-1');
        expect(await sessions.endByToken(token)).toBe(true);
        expect(await sessions.authenticate(token)).toBeNull();
        expect(await sessions.endByToken(token)).toBe(false);
        expect(await sessions.end('user-1', session.id)).toBe(false);
        expect((await sessions.listForUser('user-1')).map((s) => s.id)).toEqual([other.session.id]);
        expect(await keysMentioning(tokenFormat.digest(token))).toEqual([]);
        expect(await sessions.endByToken(tokenFormat.generate('session'))).toBe(false);
      });

      it('endAndReturn() ends the session of the token and answers it, once; null for anything else', async () => {
        const { token, session } = await login('user-1');
        const other = await login('user-1');
        expect(await sessions.endAndReturn(token)).toEqual(session);
        expect(await sessions.authenticate(token)).toBeNull();
        expect(await sessions.endAndReturn(token)).toBeNull();
        expect((await sessions.listForUser('user-1')).map((s) => s.id)).toEqual([other.session.id]);
        expect(await keysMentioning(tokenFormat.digest(token))).toEqual([]);
        const before = calls.length;
        expect(await sessions.endAndReturn(token.slice(0, -1) + (token.at(-1) === 'a' ? 'b' : 'a'))).toBeNull();
        expect(calls.slice(before)).toEqual([]);
        expect(await sessions.endAndReturn(tokenFormat.generate('session'))).toBeNull();
        // Of concurrent callers, exactly one gets the session.
        const raced = await login('user-1');
        const answers = await Promise.all(Array.from({ length: 5 }, () => sessions.endAndReturn(raced.token)));
        expect(answers.filter((answer) => answer !== null)).toHaveLength(1);
      });

      it('endAllForUser() ends every live session of the user and counts them', async () => {
        const expired = await login('user-1');
        advanceSeconds(IDLE_SECONDS / 2);
        const mine = [await login('user-1'), await login('user-1'), await login('user-1')];
        const theirs = await login('user-2');
        advanceSeconds(IDLE_SECONDS / 2); // the first one is now idle-expired
        expect(await sessions.endAllForUser('user-1')).toBe(3);
        for (const { token } of [...mine, expired]) {
          expect(await sessions.authenticate(token)).toBeNull();
          expect(await keysMentioning(tokenFormat.digest(token))).toEqual([]);
        }
        expect(await sessions.listForUser('user-1')).toEqual([]);
        expect(await sessions.authenticate(theirs.token)).not.toBeNull();
        expect(await sessions.endAllForUser('user-1')).toBe(0);
        expect(await sessions.endAllForUser('nobody')).toBe(0);
        // The user can log in again afterwards.
        const again = await login('user-1');
        expect(await sessions.authenticate(again.token)).not.toBeNull();
      });
    });
  });
}
