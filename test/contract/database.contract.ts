import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createAuditLog } from '../../src/audit/audit-log.ts';
import { createAuditQuery, decodeCursor, encodeCursor } from '../../src/audit/audit-query.ts';
import { AppError } from '../../src/shared/errors.ts';
import { createUserRepository, UniqueViolation } from '../../src/accounts/user-repository.ts';
import type { Database } from '../../src/store/sql/database.ts';
import { migrate, readMigrations } from '../../src/store/sql/migrations.ts';
import { createPasswordResetRepository } from '../../src/sessions/password-reset-repository.ts';

/**
 * What every durable store must do, whichever driver is behind it: run the migrations, keep
 * users unique case-insensitively, record audit events, roll transactions back.
 */
export function describeDatabaseContract(name: string, open: () => Promise<{ database: Database; cleanup: () => Promise<void> }>) {
  describe(`durable store contract: ${name}`, () => {
    let database: Database;
    let cleanup: () => Promise<void>;

    beforeAll(async () => {
      ({ database, cleanup } = await open());
      await migrate(database);
    }, 60_000); // PGlite's start (a WebAssembly PostgreSQL) takes a busy machine tens of seconds
    afterAll(async () => {
      await database.close();
      await cleanup();
    });

    it('applies every migration once and records it', async () => {
      const known = await readMigrations();
      const again = await migrate(database);
      expect(again.applied).toEqual([]);
      expect(again.current).toBe(known.at(-1)!.version);
      const { rows } = await database.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => r.version)).toEqual(known.map((m) => m.version));
    });

    it('refuses to run when an applied migration was edited', async () => {
      const known = await readMigrations();
      const edited = known.map((m, i) => (i === 0 ? { ...m, checksum: 'f'.repeat(64) } : m));
      await expect(migrate(database, edited)).rejects.toThrow(/was changed after it was applied/);
    });

    it('refuses to run against a database newer than the code', async () => {
      const known = await readMigrations();
      await expect(migrate(database, known.slice(0, 1))).rejects.toThrow(/newer than this code/);
    });

    it('serialises concurrent migrations under the advisory lock', async () => {
      const results = await Promise.all([migrate(database), migrate(database), migrate(database)]);
      expect(results.every((r) => r.applied.length === 0)).toBe(true);
    });

    it('keeps usernames and e-mails unique whatever their case', async () => {
      const users = createUserRepository(database);
      const created = await users.insert({ username: 'Ada', email: 'Ada@Example.org', passwordHash: 'h', allowedScopes: ['read', 'deposit:write'] });
      expect(created.allowedScopes).toEqual(['read', 'deposit:write']);
      expect(created.disabled).toBe(false);
      expect(created.createdAt).toBeInstanceOf(Date);
      await expect(users.insert({ username: 'ADA', email: null, passwordHash: 'h', allowedScopes: ['read'] })).rejects.toEqual(new UniqueViolation('username'));
      await expect(users.insert({ username: 'other', email: 'ada@example.ORG', passwordHash: 'h', allowedScopes: ['read'] })).rejects.toEqual(new UniqueViolation('email'));
      expect((await users.findByUsername('aDa'))?.id).toBe(created.id);
      expect((await users.findByLogin('ADA@example.org'))?.id).toBe(created.id);
      expect(await users.findById('not-a-uuid')).toBeNull();
      expect(await users.findById(created.id)).toMatchObject({ username: 'Ada' });
    });

    it('updates password hashes, disabled flags and scopes', async () => {
      const users = createUserRepository(database);
      const user = await users.insert({ username: 'grace', email: null, passwordHash: 'old', allowedScopes: ['read'] });
      expect(await users.updatePasswordHash(user.id, 'new', true)).toBe(true);
      expect(await users.setDisabled(user.id, true)).toBe(true);
      expect(await users.setAllowedScopes(user.id, ['read', 'deposit:actions'])).toBe(true);
      const after = await users.findById(user.id);
      expect(after).toMatchObject({ passwordHash: 'new', disabled: true, allowedScopes: ['read', 'deposit:actions'] });
      expect(after!.passwordChangedAt.getTime()).toBeGreaterThanOrEqual(user.passwordChangedAt.getTime());
      expect(await users.setDisabled('00000000-0000-0000-0000-000000000000', true)).toBe(false);
      expect(await users.count()).toBeGreaterThanOrEqual(2);
      const listed = await users.list({ limit: 10, offset: 0 });
      expect(listed.map((u) => u.username)).toEqual(expect.arrayContaining(['Ada', 'grace']));
    });

    it('records audit events with JSON details, newest first', async () => {
      const audit = createAuditLog(database);
      await audit.record({ actor: 'cli:root', action: 'user.created', subject: 'user:1', details: { scopes: ['read'] } });
      await audit.record({ actor: 'user:1', action: 'token.created', subject: 'token:9', ip: '203.0.113.5', userAgent: 'curl/8' });
      const events = await audit.listFor('user:1', { limit: 10 });
      expect(events.map((e) => e.action)).toEqual(['token.created', 'user.created']);
      expect(events[1]!.details).toEqual({ scopes: ['read'] });
      expect(events[0]).toMatchObject({ ip: '203.0.113.5', userAgent: 'curl/8' });
      expect(typeof events[0]!.id).toBe('number');
      const older = await audit.listFor('user:1', { limit: 10, before: events[0]!.id });
      expect(older.map((e) => e.action)).toEqual(['user.created']);
      // A user's own view also has events on their credentials, which name them in details.userId.
      await audit.record({ actor: 'ip:198.51.100.7', action: 'token.failed_use', subject: 'token:9', details: { userId: '1', reason: 'revoked' } });
      await audit.record({ actor: 'ip:198.51.100.7', action: 'token.failed_use', subject: 'token:8', details: { userId: '2', reason: 'revoked' } });
      const mine = (await createAuditQuery(database).page({ userId: '1' }, { limit: 10 })).events;
      expect(mine.map((e) => [e.action, e.subject])).toEqual([['token.failed_use', 'token:9'], ['token.created', 'token:9'], ['user.created', 'user:1']]);
    });

    it('queries the audit log by user, action (exact or prefix), client and time, newest first', async () => {
      const audit = createAuditLog(database);
      const query = createAuditQuery(database);
      const u = 'q-user-1';
      await audit.record({ actor: `user:${u}`, action: 'sign_in.succeeded', subject: `user:${u}`, details: { via: 'api' } });
      await audit.record({ actor: 'ip:203.0.113.9', action: 'sign_in.failed', subject: `user:${u}`, details: { via: 'oauth', reason: 'wrong_password' } });
      await audit.record({ actor: 'client:q-rs', action: 'oauth.token_revoked', subject: `user:${u}`, details: { userId: u, clientId: 'q-app', kind: 'refresh_token' } });
      await audit.record({ actor: 'cli:root', action: 'client.created', subject: 'client:q-app' });
      // Neither an action of the sign_in. family nor the user's: "sign_inx" must not match the prefix.
      await audit.record({ actor: 'user:q-user-2', action: 'sign_inx.other', subject: 'user:q-user-2' });
      const actions = async (filter: Parameters<typeof query.page>[0]) => (await query.page(filter, { limit: 100 })).events.map((e) => e.action);

      expect(await actions({ userId: u })).toEqual(['oauth.token_revoked', 'sign_in.failed', 'sign_in.succeeded']);
      expect(await actions({ userId: u, action: 'sign_in.' })).toEqual(['sign_in.failed', 'sign_in.succeeded']);
      expect(await actions({ userId: u, action: 'sign_in.failed' })).toEqual(['sign_in.failed']);
      expect(await actions({ action: 'sign_in' })).toEqual([]);
      // The client: what it did, what was done to it, and events on its tokens (details.clientId).
      expect(await actions({ clientId: 'q-app' })).toEqual(['client.created', 'oauth.token_revoked']);
      expect(await actions({ clientId: 'q-rs' })).toEqual(['oauth.token_revoked']);
      // Both: the user's events that concern the client.
      expect(await actions({ userId: u, clientId: 'q-app' })).toEqual(['oauth.token_revoked']);
      expect(await actions({ userId: u, clientId: 'q-app', action: 'sign_in.' })).toEqual([]);
      // Time: nothing in the future, everything since an hour ago.
      expect(await actions({ userId: u, since: new Date(Date.now() + 3600_000) })).toEqual([]);
      expect(await actions({ userId: u, since: new Date(Date.now() - 3600_000).toISOString(), until: new Date(Date.now() + 3600_000).toISOString() })).toHaveLength(3);
      expect(await actions({ userId: u, until: new Date(Date.now() - 3600_000) })).toEqual([]);
    });

    it('refuses bad filters and cursors with a 400 naming the field', async () => {
      const query = createAuditQuery(database);
      const refusal = async (promise: Promise<unknown>) => {
        const error = await promise.then(() => null, (e: unknown) => e);
        expect(error).toBeInstanceOf(AppError);
        expect((error as AppError).status).toBe(400);
        return (error as AppError).errors?.map((e) => e.field);
      };
      expect(await refusal(query.page({ action: "x' OR 1=1 --" }))).toEqual(['action']);
      expect(await refusal(query.page({ since: 'yesterday' }))).toEqual(['since']);
      expect(await refusal(query.page({ since: '2026-02-01T00:00:00Z', until: '2026-01-01T00:00:00Z' }))).toEqual(['until']);
      expect(await refusal(query.page({ unknown: 'x' } as never))).toBeDefined();
      expect(await refusal(query.page({}, { limit: 501 }))).toEqual(['limit']);
      expect(await refusal(query.page({}, { cursor: 'not-a-cursor' }))).toEqual(['cursor']);
      expect(await refusal(query.page({}, { cursor: Buffer.from('a1.-4').toString('base64url') }))).toEqual(['cursor']);
      expect(decodeCursor(encodeCursor(42))).toBe(42);
    });

    it('pages by cursor without repeating or skipping events written meanwhile', async () => {
      const audit = createAuditLog(database);
      const query = createAuditQuery(database);
      const subject = 'user:paged';
      for (let i = 0; i < 7; i++) await audit.record({ actor: 'system', action: 'paging.test', subject, details: { n: i } });
      const first = await query.page({ userId: 'paged' }, { limit: 3 });
      expect(first.events.map((e) => e.details.n)).toEqual([6, 5, 4]);
      expect(first.nextCursor).toEqual(expect.any(String));
      // Newer events arrive between pages: the next page goes on where the first ended.
      await Promise.all([0, 1, 2].map((i) => audit.record({ actor: 'system', action: 'paging.test', subject, details: { n: 100 + i } })));
      const second = await query.page({ userId: 'paged' }, { limit: 3, cursor: first.nextCursor! });
      expect(second.events.map((e) => e.details.n)).toEqual([3, 2, 1]);
      const third = await query.page({ userId: 'paged' }, { limit: 3, cursor: second.nextCursor! });
      expect(third.events.map((e) => e.details.n)).toEqual([0]);
      expect(third.nextCursor).toBeNull();
      // A page that ends exactly at the last event says there is no next one.
      const exact = await query.page({ userId: 'paged', action: 'paging.test' }, { limit: 10 });
      expect(exact.events).toHaveLength(10);
      expect(exact.nextCursor).toBeNull();
    });

    it('exports every match newest first, in batches', async () => {
      const audit = createAuditLog(database);
      const query = createAuditQuery(database);
      // More than one export batch (500), written in one statement.
      await database.query(
        `INSERT INTO audit_events (actor, action, subject, details) SELECT 'system', 'export.test', 'user:exported', jsonb_build_object('n', n) FROM generate_series(1, 1203) AS n`,
      );
      await audit.record({ actor: 'system', action: 'export.other', subject: 'user:exported' });
      const seen: number[] = [];
      for await (const event of query.export({ userId: 'exported', action: 'export.test' })) seen.push(event.details.n as number);
      expect(seen).toHaveLength(1203);
      expect(seen[0]).toBe(1203);
      expect(seen.at(-1)).toBe(1);
      expect(new Set(seen).size).toBe(1203);
    });

    it('writes background events, and counts untrusted ones over the budget in one summary', async () => {
      const audit = createAuditLog(database, { untrustedPerMinute: 3 });
      for (let i = 0; i < 10; i++) audit.recordInBackground({ actor: 'ip:192.0.2.1', action: 'sign_in.failed', subject: 'user:flooded' }, { untrusted: true });
      audit.recordInBackground({ actor: 'user:flooded', action: 'sign_in.succeeded', subject: 'user:flooded' });
      await audit.settled();
      const query = createAuditQuery(database);
      expect((await query.page({ userId: 'flooded' })).events.map((e) => e.action).sort()).toEqual(['sign_in.failed', 'sign_in.failed', 'sign_in.failed', 'sign_in.succeeded']);
      const [summary] = (await query.page({ action: 'audit.suppressed' })).events;
      expect(summary).toMatchObject({ actor: 'system', details: { counts: { 'sign_in.failed': 7 }, total: 7 } });
    });

    it('rolls a failed transaction back', async () => {
      const users = createUserRepository(database);
      await expect(
        database.transaction(async (tx) => {
          await users.insert({ username: 'rollback', email: null, passwordHash: 'h', allowedScopes: ['read'] }, tx);
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await users.findByUsername('rollback')).toBeNull();
    });

    describe('password-reset links', () => {
      const now = new Date('2030-01-01T12:00:00Z');
      const later = (minutes: number) => new Date(now.getTime() + minutes * 60_000);

      it('finds a link until it expires, is used, or the password changes; and not for a disabled account', async () => {
        const users = createUserRepository(database);
        const resets = createPasswordResetRepository(database);
        const user = await users.insert({ username: 'reset-me', email: 'reset@example.org', passwordHash: 'h', allowedScopes: ['read'] });
        expect(await resets.insert({ userId: user.id, tokenSha256: 'digest-a', createdAt: now, expiresAt: later(30) })).toBe(true);
        expect(await resets.insert({ userId: '00000000-0000-4000-8000-000000000000', tokenSha256: 'digest-x', createdAt: now, expiresAt: later(30) })).toBe(false);
        expect(await resets.peek('digest-a', later(29))).toBe(user.id);
        expect(await resets.peek('digest-a', later(30))).toBeNull();
        expect(await resets.consume('digest-a', later(31))).toBeNull();
        expect(await resets.peek('unknown', now)).toBeNull();

        await resets.insert({ userId: user.id, tokenSha256: 'digest-b', createdAt: now, expiresAt: later(30) });
        await users.setDisabled(user.id, true);
        expect(await resets.consume('digest-b', now)).toBeNull();
        await users.setDisabled(user.id, false);
        expect(await resets.consume('digest-b', now)).toBe(user.id);
        expect(await resets.consume('digest-b', now)).toBeNull();

        await resets.insert({ userId: user.id, tokenSha256: 'digest-c', createdAt: now, expiresAt: later(30) });
        // A rehash with new parameters is not a password change; a change is.
        await users.updatePasswordHash(user.id, 'h2', false);
        expect(await resets.peek('digest-c', now)).toBe(user.id);
        await users.updatePasswordHash(user.id, 'h3', true);
        expect(await resets.peek('digest-c', now)).toBeNull();
        expect(await resets.consume('digest-c', now)).toBeNull();
      });

      it('lets exactly one of many simultaneous uses of a link through', async () => {
        const users = createUserRepository(database);
        const resets = createPasswordResetRepository(database);
        const user = await users.insert({ username: 'race-reset', email: null, passwordHash: 'h', allowedScopes: ['read'] });
        await resets.insert({ userId: user.id, tokenSha256: 'digest-race', createdAt: now, expiresAt: later(30) });
        const outcomes = await Promise.all(Array.from({ length: 20 }, () => resets.consume('digest-race', now)));
        expect(outcomes.filter((o) => o === user.id)).toHaveLength(1);
        expect(outcomes.filter((o) => o === null)).toHaveLength(19);
      });
    });
  });
}
