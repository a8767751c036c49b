import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createAuditLog } from '../../src/audit/audit-log.ts';
import { createUserRepository, UniqueViolation } from '../../src/accounts/user-repository.ts';
import type { Database } from '../../src/store/sql/database.ts';
import { migrate, readMigrations } from '../../src/store/sql/migrations.ts';

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
      const mine = await audit.listForUser('1', { limit: 10 });
      expect(mine.map((e) => [e.action, e.subject])).toEqual([['token.failed_use', 'token:9'], ['token.created', 'token:9'], ['user.created', 'user:1']]);
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
  });
}
