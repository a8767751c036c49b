import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import argon2 from 'argon2';
import { createAccountService, type AccountService } from '../../src/accounts/account-service.ts';
import { createPasswordHasher } from '../../src/accounts/hashing/password-hasher.ts';
import { createUserRepository } from '../../src/accounts/user-repository.ts';
import { createAuditLog } from '../../src/audit/audit-log.ts';
import { AppError } from '../../src/shared/errors.ts';
import type { Database } from '../../src/store/sql/database.ts';
import { migrate } from '../../src/store/sql/migrations.ts';
import { createPostgresDatabase } from '../../src/store/sql/postgres-database.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const CATALOG = { read: 'Read', 'deposit:write': 'Write', 'deposit:actions': 'Publish' };
// Light argon2 parameters keep the suite quick; the defaults are covered by the config tests.
const PARAMETERS = { memoryKiB: 8192, timeCost: 1, parallelism: 1 };

describe('account service on PostgreSQL', () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let accounts: AccountService;
  const changed: string[] = [];
  const disabled: string[] = [];
  const by = { actor: 'test' };

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createPostgresDatabase({ url: testDatabase.url, poolSize: 2 });
    await migrate(database);
    accounts = createAccountService({
      users: createUserRepository(database),
      audit: createAuditLog(database),
      hasher: createPasswordHasher(PARAMETERS),
      scopeCatalog: CATALOG,
      defaultScopes: ['read'],
      passwordMinLength: 10,
      listeners: [{ passwordChanged: async (u) => void changed.push(u.username), disabled: async (u) => void disabled.push(u.username) }],
    });
  });
  afterAll(async () => {
    await database.close();
    await testDatabase.drop();
  });

  it('creates a user whose password then checks, stored as argon2id', async () => {
    const user = await accounts.createUser({ username: 'alice', email: 'alice@example.org', password: 'correct horse battery' }, by);
    expect(user.allowedScopes).toEqual(['read']);
    expect(user).not.toHaveProperty('passwordHash');
    const stored = await createUserRepository(database).findById(user.id);
    expect(stored!.passwordHash).toMatch(/^\$argon2id\$v=19\$m=8192,p=1,t=1\$/);
    const result = await accounts.authenticate('alice', 'correct horse battery');
    expect(result).toMatchObject({ ok: true, user: { username: 'alice' } });
    expect(await accounts.authenticate('ALICE@example.org', 'correct horse battery')).toMatchObject({ ok: true });
  });

  it('rejects a wrong password, an unknown user and a disabled user', async () => {
    expect(await accounts.authenticate('alice', 'wrong password!')).toEqual({ ok: false, reason: 'wrong_password' });
    expect(await accounts.authenticate('nobody', 'whatever it is')).toEqual({ ok: false, reason: 'unknown_user' });
    await accounts.createUser({ username: 'mallory', password: 'mallory-password' }, by);
    await accounts.setDisabled('mallory', true, by);
    expect(disabled).toEqual(['mallory']);
    expect(await accounts.authenticate('mallory', 'mallory-password')).toEqual({ ok: false, reason: 'disabled' });
    await accounts.setDisabled('mallory', false, by);
    expect(await accounts.authenticate('mallory', 'mallory-password')).toMatchObject({ ok: true });
  });

  it('does the same hashing work for an unknown name as for an existing account: one verification, same parameters', async () => {
    const hasher = createPasswordHasher(PARAMETERS);
    /** Each call that reached the hasher: its kind and the argon2 variant, version and parameters of the hash it used. */
    const calls: string[][] = [];
    const recording = {
      hash: async (password: string) => {
        calls.push(['hash']);
        return hasher.hash(password);
      },
      verify: async (hash: string, password: string) => {
        calls.push(['verify', ...hash.split('$').slice(1, 4)]);
        return hasher.verify(hash, password);
      },
      decoyHash: () => hasher.decoyHash(),
      // The hasher's former way for unknown names (a verification of its own), recorded if called.
      verifyDecoy: async () => void calls.push(['verifyDecoy']),
    };
    const service = createAccountService({
      users: createUserRepository(database), audit: createAuditLog(database), hasher: recording,
      scopeCatalog: CATALOG, defaultScopes: ['read'], passwordMinLength: 10,
    });
    await service.createUser({ username: 'timing', email: 'timing@example.org', password: 'timing-password' }, by);
    await service.createUser({ username: 'timing-off', password: 'timing-password' }, by);
    await service.setDisabled('timing-off', true, by);
    const attempts: Array<[string, string]> = [
      ['timing', 'wrong password!'],
      ['TIMING@example.org', 'wrong password!'],
      ['timing-off', 'timing-password'],
      ['timing', 'p'.repeat(2000)],
      ['no-such-user', 'wrong password!'],
      ['nobody@example.org', 'wrong password!'],
      ['x'.repeat(300), 'wrong password!'],
    ];
    const work: string[][][] = [];
    for (const [login, password] of attempts) {
      calls.length = 0;
      expect(await service.authenticate(login, password)).toMatchObject({ ok: false });
      work.push([...calls]);
    }
    expect(work).toEqual(attempts.map(() => [['verify', 'argon2id', 'v=19', 'm=8192,p=1,t=1']]));
  });

  it('upgrades a hash made with older parameters at the next successful login', async () => {
    const users = createUserRepository(database);
    const weak = await argon2.hash('legacy-password', { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
    const legacy = await users.insert({ username: 'legacy', email: null, passwordHash: weak, allowedScopes: ['read'] });
    expect(await accounts.authenticate('legacy', 'wrong-password')).toMatchObject({ ok: false });
    expect((await users.findById(legacy.id))!.passwordHash).toBe(weak);
    expect(await accounts.authenticate('legacy', 'legacy-password')).toMatchObject({ ok: true });
    const upgraded = (await users.findById(legacy.id))!;
    expect(upgraded.passwordHash).toMatch(/^\$argon2id\$v=19\$m=8192,p=1,t=1\$/);
    // A transparent rehash is not a password change: sessions must survive it.
    expect(upgraded.passwordChangedAt.getTime()).toBe(legacy.passwordChangedAt.getTime());
    expect(changed).not.toContain('legacy');
    expect(await accounts.authenticate('legacy', 'legacy-password')).toMatchObject({ ok: true });
  });

  it('validates input with field errors', async () => {
    const attempt = accounts.createUser({ username: 'bad name', email: 'not-an-email', password: 'short', scopes: ['read', 'admin:everything'] }, by);
    await expect(attempt).rejects.toBeInstanceOf(AppError);
    const error = (await attempt.catch((e: unknown) => e)) as AppError;
    expect(error.status).toBe(400);
    expect(error.errors!.map((e) => e.field).sort()).toEqual(['email', 'password', 'scopes.1', 'username']);
  });

  it('answers 409 for a username taken in another case', async () => {
    await expect(accounts.createUser({ username: 'Alice', password: 'another password' }, by)).rejects.toMatchObject({ status: 409 });
  });

  it('changes a password, tells listeners and records it in the audit log', async () => {
    await accounts.changePassword('alice', 'a brand new password', by);
    expect(changed).toEqual(['alice']);
    expect(await accounts.authenticate('alice', 'correct horse battery')).toMatchObject({ ok: false });
    expect(await accounts.authenticate('alice', 'a brand new password')).toMatchObject({ ok: true });
    const user = await accounts.findUser('alice');
    const events = await createAuditLog(database).listFor(`user:${user!.id}`, { limit: 10 });
    expect(events.map((e) => e.action)).toEqual(['user.password_changed', 'user.created']);
    expect(JSON.stringify(events)).not.toMatch(/brand new/);
  });

  it('creates the first admin only on an empty database', async () => {
    expect(await accounts.ensureInitialAdmin('admin', null)).toBeNull();
  });
});
