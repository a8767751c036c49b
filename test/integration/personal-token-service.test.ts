import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { withoutSecret, createUserRepository, type UserRepository } from '../../src/accounts/user-repository.ts';
import type { User } from '../../src/accounts/user.ts';
import { createAuditLog } from '../../src/audit/audit-log.ts';
import { AppError } from '../../src/shared/errors.ts';
import type { Database, Queryable } from '../../src/store/sql/database.ts';
import { migrate } from '../../src/store/sql/migrations.ts';
import { createPostgresDatabase } from '../../src/store/sql/postgres-database.ts';
import { createPersonalTokenService, type PersonalTokenService, type PersonalTokenServiceOptions } from '../../src/personal-tokens/personal-token-service.ts';
import { tokenFormat } from '../../src/credentials/token-format.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const CATALOG = { read: 'Read', 'deposit:write': 'Write', 'deposit:actions': 'Publish' };
const DAY_MS = 86_400_000;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Rejects with the AppError `promise` fails with, so its fields can be inspected. */
async function failure(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

/** The same value with the character at `index` replaced by another base62 character. */
function mistype(value: string, index: number): string {
  const current = value[index]!;
  const replacement = BASE62[(BASE62.indexOf(current) + 1) % BASE62.length]!;
  return value.slice(0, index) + replacement + value.slice(index + 1);
}

/** A Database that delegates to the real one and remembers every statement sent through it. */
function recording(database: Database): { database: Database; statements: string[] } {
  const statements: string[] = [];
  const wrap = (connection: Queryable): Queryable => ({
    query<R = Record<string, unknown>>(sql: string, params?: unknown[]) {
      statements.push(sql);
      return connection.query<R>(sql, params);
    },
    exec(sql: string) {
      statements.push(sql);
      return connection.exec(sql);
    },
  });
  const wrapped: Database = {
    kind: database.kind,
    ...wrap(database),
    transaction: (fn) => database.transaction((tx) => fn(wrap(tx))),
    withAdvisoryLock: (key, fn) => database.withAdvisoryLock(key, (connection) => fn(wrap(connection))),
    ping: () => database.ping(),
    close: () => database.close(),
  };
  return { database: wrapped, statements };
}

describe('personal token service on PostgreSQL', () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let users: UserRepository;
  let now = Date.parse('2031-03-01T09:00:00.000Z');
  const clock = () => now;
  const by = (user: User) => ({ actor: `user:${user.id}`, ip: '198.51.100.7', userAgent: 'jest' });
  /** Every token value seen in this file, to prove none reaches the database. */
  const values: string[] = [];

  function service(overrides: Partial<PersonalTokenServiceOptions> = {}): PersonalTokenService {
    return createPersonalTokenService({ database, audit: createAuditLog(database), scopeCatalog: CATALOG, clock, ...overrides });
  }

  /** A service on a database wrapper that records the statements the service sends. */
  function recordedService(overrides: Partial<PersonalTokenServiceOptions> = {}) {
    const recorder = recording(database);
    const tokens = createPersonalTokenService({ database: recorder.database, audit: createAuditLog(recorder.database), scopeCatalog: CATALOG, clock, ...overrides });
    return { tokens, statements: recorder.statements };
  }

  let userCount = 0;
  async function newUser(scopes: string[] = ['read', 'deposit:write']): Promise<User> {
    userCount++;
    return withoutSecret(await users.insert({ username: `pat-user-${userCount}`, email: null, passwordHash: 'not-a-hash', allowedScopes: scopes }));
  }

  async function create(tokens: PersonalTokenService, user: User, input: Parameters<PersonalTokenService['create']>[1] = { name: 'script' }) {
    const created = await tokens.create(user, input, by(user));
    values.push(created.token);
    return created;
  }

  async function eventsFor(subject: string) {
    const { rows } = await database.query<{ actor: string; action: string; ip: string | null; details: Record<string, unknown> }>(
      'SELECT actor, action, ip, details FROM audit_events WHERE subject = $1 ORDER BY id',
      [subject],
    );
    return rows;
  }

  async function failedUses(hint: string) {
    const { rows } = await database.query<{ actor: string; subject: string | null; ip: string | null; details: Record<string, unknown> }>(
      "SELECT actor, subject, ip, details FROM audit_events WHERE action = 'token.failed_use' AND details->>'hint' = $1 ORDER BY id",
      [hint],
    );
    return rows;
  }

  async function storedRow(id: string) {
    const { rows } = await database.query<{ last_used_at: Date | null; last_used_ip: string | null; revoked_at: Date | null }>(
      'SELECT last_used_at, last_used_ip, revoked_at FROM personal_tokens WHERE id = $1',
      [id],
    );
    return rows[0]!;
  }

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createPostgresDatabase({ url: testDatabase.url, poolSize: 12 });
    await migrate(database);
    users = createUserRepository(database);
  });
  afterAll(async () => {
    await database.close();
    await testDatabase.drop();
  });

  describe('create', () => {
    it('returns a tsr_pat_ value once, with scope read and a 30-day expiry by default', async () => {
      const user = await newUser();
      const { token, record } = await create(service(), user, { name: '  nightly backup  ' });
      expect(token).toMatch(/^tsr_pat_[0-9A-Za-z]{38}$/);
      expect(tokenFormat.parse(token)).toBe('personal_access_token');
      expect(record).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        name: 'nightly backup',
        scopes: ['read'],
        hint: token.slice(0, 12),
        createdAt: new Date(now),
        expiresAt: new Date(now + 30 * DAY_MS),
        lastUsedAt: null,
        lastUsedIp: null,
        revoked: false,
        revokedAt: null,
        expired: false,
      });
      const { rows } = await database.query<{ token_digest: string }>('SELECT token_digest FROM personal_tokens WHERE id = $1', [record.id]);
      expect(rows[0]!.token_digest).toBe(tokenFormat.digest(token));
    });

    it('accepts a subset of the allowed scopes, without duplicates', async () => {
      const user = await newUser(['read', 'deposit:write', 'deposit:actions']);
      const { record } = await create(service(), user, { name: 'ci', scopes: ['deposit:write', 'read', 'deposit:write'] });
      expect(record.scopes).toEqual(['deposit:write', 'read']);
    });

    it('refuses scopes the user does not hold, unknown scopes and an empty list, naming each', async () => {
      const user = await newUser(['read']);
      const tokens = service();
      const notAllowed = await failure(tokens.create(user, { name: 'x', scopes: ['read', 'deposit:write'] }, by(user)));
      expect(notAllowed.status).toBe(400);
      expect(notAllowed.errors).toEqual([{ field: 'scopes.1', code: 'custom', message: 'scope "deposit:write" is not one of your allowed scopes (read)' }]);
      const unknown = await failure(tokens.create(user, { name: 'x', scopes: ['admin:everything'] }, by(user)));
      expect(unknown.errors).toEqual([{ field: 'scopes.0', code: 'custom', message: 'unknown scope "admin:everything"' }]);
      const empty = await failure(tokens.create(user, { name: 'x', scopes: [] }, by(user)));
      expect(empty.errors?.map((e) => e.field)).toEqual(['scopes']);
      // The default scope is checked like any other.
      const noRead = await newUser(['deposit:write']);
      const defaulted = await failure(tokens.create(noRead, { name: 'x' }, by(noRead)));
      expect(defaulted.errors?.[0]?.message).toContain('"read"');
      expect(await tokens.list(user.id)).toEqual([]);
    });

    it('refuses an empty, too long or control-character name', async () => {
      const user = await newUser();
      const tokens = service();
      for (const name of ['   ', 'x'.repeat(101), 'line\nbreak']) {
        const error = await failure(tokens.create(user, { name }, by(user)));
        expect(error.status).toBe(400);
        expect(error.errors?.map((e) => e.field)).toEqual(['name']);
      }
      expect((await create(tokens, user, { name: 'x'.repeat(100) })).record.name).toHaveLength(100);
    });

    it('accepts 7, 30, 90 and 365 days and any whole number up to the maximum', async () => {
      const user = await newUser();
      const tokens = service();
      for (const days of [7, 30, 90, 365, 1, 200]) {
        const { record } = await create(tokens, user, { name: `d${days}`, expiresInDays: days });
        expect(record.expiresAt).toEqual(new Date(now + days * DAY_MS));
      }
      expect(tokens.expiry).toEqual({ choices: [7, 30, 90, 365], defaultDays: 30, maxDays: 365, allowNoExpiry: false });
    });

    it('refuses no expiry unless allowed, and lifetimes beyond the maximum or not whole days', async () => {
      const user = await newUser();
      const tokens = service();
      const noExpiry = await failure(tokens.create(user, { name: 'forever', expiresInDays: null }, by(user)));
      expect(noExpiry.status).toBe(400);
      expect(noExpiry.errors).toEqual([{ field: 'expiresInDays', code: 'custom', message: 'tokens must expire: choose 1–365 days' }]);
      for (const days of [366, 0, -7, 2.5]) {
        const error = await failure(tokens.create(user, { name: 'bad', expiresInDays: days }, by(user)));
        expect(error.errors?.map((e) => e.field)).toEqual(['expiresInDays']);
      }
      const short = service({ maxExpiryDays: 90 });
      expect(short.expiry.choices).toEqual([7, 30, 90]);
      expect((await failure(short.create(user, { name: 'year', expiresInDays: 365 }, by(user)))).errors?.[0]?.message).toBe('must be at most 90 days');

      const lenient = service({ allowNoExpiry: true });
      const { token, record } = await create(lenient, user, { name: 'forever', expiresInDays: null });
      expect(record.expiresAt).toBeNull();
      now += 3650 * DAY_MS;
      expect(await lenient.verify(token, { ip: null })).toMatchObject({ tokenId: record.id, expiresAt: null });
    });

    it('rejects bad options at construction', () => {
      expect(() => service({ maxExpiryDays: 0 })).toThrow(RangeError);
      expect(() => service({ maxExpiryDays: 10, defaultExpiryDays: 30 })).toThrow(/must not exceed/);
      expect(service({ maxExpiryDays: 10 }).expiry).toMatchObject({ defaultDays: 10, choices: [7] });
    });
  });

  describe('list', () => {
    it('shows the user’s tokens newest first, revoked and expired ones flagged, never a value or digest', async () => {
      const user = await newUser();
      const other = await newUser();
      const tokens = service();
      const first = await create(tokens, user, { name: 'first', expiresInDays: 7 });
      now += 1000;
      const second = await create(tokens, user, { name: 'second' });
      now += 1000;
      const third = await create(tokens, user, { name: 'third' });
      await create(tokens, other, { name: 'not yours' });
      await tokens.revoke(user.id, second.record.id, by(user));
      now += 8 * DAY_MS;
      const listed = await tokens.list(user.id);
      expect(listed.map((t) => [t.name, t.revoked, t.expired])).toEqual([
        ['third', false, false],
        ['second', true, false],
        ['first', false, true],
      ]);
      const json = JSON.stringify(listed);
      for (const { token } of [first, second, third]) {
        expect(json).not.toContain(token);
        expect(json).not.toContain(tokenFormat.digest(token));
      }
      expect(await tokens.list('not-a-uuid')).toEqual([]);
    });
  });

  describe('verify', () => {
    it('grants the token’s scopes and owner, and records its first use', async () => {
      const user = await newUser();
      const tokens = service();
      const { token, record } = await create(tokens, user, { name: 'upload', scopes: ['read', 'deposit:write'], expiresInDays: 90 });
      expect(await tokens.verify(token, { ip: '203.0.113.9' })).toEqual({
        tokenId: record.id,
        userId: user.id,
        username: user.username,
        scopes: ['read', 'deposit:write'],
        expiresAt: new Date(now + 90 * DAY_MS),
        createdAt: new Date(now),
      });
      expect(await storedRow(record.id)).toMatchObject({ last_used_at: new Date(now), last_used_ip: '203.0.113.9' });
      expect((await tokens.list(user.id))[0]).toMatchObject({ lastUsedAt: new Date(now), lastUsedIp: '203.0.113.9' });
    });

    it('refuses a revoked token', async () => {
      const user = await newUser();
      const tokens = service();
      const { token, record } = await create(tokens, user);
      await tokens.revoke(user.id, record.id, by(user));
      expect(await tokens.verify(token, { ip: null })).toBeNull();
    });

    it('refuses a token from the moment it expires, by the injected clock', async () => {
      const user = await newUser();
      const tokens = service();
      const { token } = await create(tokens, user, { name: 'week', expiresInDays: 7 });
      now += 7 * DAY_MS - 1;
      expect(await tokens.verify(token, { ip: null })).not.toBeNull();
      now += 1;
      expect(await tokens.verify(token, { ip: null })).toBeNull();
    });

    it('refuses every token of a disabled user until re-enabled', async () => {
      const user = await newUser();
      const tokens = service();
      const { token } = await create(tokens, user);
      await users.setDisabled(user.id, true);
      expect(await tokens.verify(token, { ip: null })).toBeNull();
      await users.setDisabled(user.id, false);
      expect(await tokens.verify(token, { ip: null })).not.toBeNull();
    });

    it('stops granting a scope as soon as it is taken from the user, and refuses when none is left', async () => {
      const user = await newUser(['read', 'deposit:write']);
      const tokens = service();
      const { token } = await create(tokens, user, { name: 'both', scopes: ['read', 'deposit:write'] });
      await users.setAllowedScopes(user.id, ['read']);
      expect((await tokens.verify(token, { ip: null }))?.scopes).toEqual(['read']);
      await users.setAllowedScopes(user.id, ['deposit:actions']);
      expect(await tokens.verify(token, { ip: null })).toBeNull();
      await users.setAllowedScopes(user.id, ['read', 'deposit:write']);
      expect((await tokens.verify(token, { ip: null }))?.scopes).toEqual(['read', 'deposit:write']);
    });

    it('refuses a mistyped token, another kind of token and garbage without touching the database', async () => {
      const user = await newUser();
      const { token } = await create(service(), user);
      const { tokens, statements } = recordedService();
      const candidates = [
        mistype(token, 8), // first random character
        mistype(token, 25),
        mistype(token, token.length - 1), // the checksum
        token.slice(0, -1),
        `${token}x`,
        token.replace('tsr_pat_', 'tsr_ses_'),
        tokenFormat.generate('session'),
        '',
        'Bearer whatever',
        42 as unknown as string,
      ];
      for (const candidate of candidates) expect(await tokens.verify(candidate, { ip: '203.0.113.1' })).toBeNull();
      expect(statements).toEqual([]);
      // The recorder does see the statements of a well-formed token.
      expect(await tokens.verify(token, { ip: '203.0.113.1' })).not.toBeNull();
      expect(statements.length).toBeGreaterThan(0);
    });

    it('writes the last use at most once per interval', async () => {
      const user = await newUser();
      const { token, record } = await create(service(), user);
      const { tokens, statements } = recordedService({ lastUsedIntervalMs: 60_000 });
      const touches = () => statements.filter((sql) => sql.startsWith('UPDATE personal_tokens SET last_used_at')).length;
      const firstUse = now;
      await tokens.verify(token, { ip: '192.0.2.1' });
      // Many requests within the interval, some concurrent: no further write.
      await Promise.all(Array.from({ length: 5 }, () => tokens.verify(token, { ip: '192.0.2.2' })));
      now += 59_999;
      await tokens.verify(token, { ip: '192.0.2.3' });
      expect(touches()).toBe(1);
      expect(await storedRow(record.id)).toMatchObject({ last_used_at: new Date(firstUse), last_used_ip: '192.0.2.1' });
      now += 1;
      await tokens.verify(token, { ip: '192.0.2.4' });
      await tokens.verify(token, { ip: '192.0.2.5' });
      expect(touches()).toBe(2);
      expect(await storedRow(record.id)).toMatchObject({ last_used_at: new Date(now), last_used_ip: '192.0.2.4' });
    });

    it('skips the write when another node recorded a use within the interval', async () => {
      const user = await newUser();
      const { token, record } = await create(service(), user);
      await service().verify(token, { ip: '192.0.2.10' });
      const { tokens, statements } = recordedService();
      now += 30_000;
      expect(await tokens.verify(token, { ip: '192.0.2.11' })).not.toBeNull();
      expect(statements.filter((sql) => sql.startsWith('UPDATE'))).toEqual([]);
      expect((await storedRow(record.id)).last_used_ip).toBe('192.0.2.10');
    });
  });

  describe('revoke', () => {
    it('revokes the user’s own token once; another user, a second revocation or a bad id get 404', async () => {
      const owner = await newUser();
      const stranger = await newUser();
      const tokens = service();
      const { token, record } = await create(tokens, owner);
      const notTheirs = await failure(tokens.revoke(stranger.id, record.id, by(stranger)));
      expect(notTheirs.status).toBe(404);
      expect(await tokens.verify(token, { ip: null })).not.toBeNull();
      expect((await failure(tokens.revoke(owner.id, 'not-a-uuid', by(owner)))).status).toBe(404);
      const revoked = await tokens.revoke(owner.id, record.id, by(owner));
      expect(revoked).toMatchObject({ id: record.id, revoked: true, revokedAt: new Date(now) });
      expect((await failure(tokens.revoke(owner.id, record.id, by(owner)))).status).toBe(404);
      expect(await eventsFor(`token:${record.id}`)).toEqual([
        expect.objectContaining({ action: 'token.created' }),
        { actor: `user:${owner.id}`, action: 'token.revoked', ip: '198.51.100.7', details: { userId: owner.id, name: 'script', hint: record.hint } },
      ]);
    });

    it('lets exactly one of 10 concurrent revocations succeed', async () => {
      const user = await newUser();
      const tokens = service();
      const { record } = await create(tokens, user);
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => tokens.revoke(user.id, record.id, by(user))));
      const fulfilled = results.filter((r) => r.status === 'fulfilled');
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(fulfilled).toHaveLength(1);
      expect(rejected).toHaveLength(9);
      for (const r of rejected) expect(r.reason).toMatchObject({ status: 404 });
      expect((await eventsFor(`token:${record.id}`)).filter((e) => e.action === 'token.revoked')).toHaveLength(1);
    });
  });

  describe('revokeLeaked', () => {
    const reporter = { actor: 'reporter:github' };
    const sighting = { reporter: 'github', type: 'tessera_personal_access_token', url: 'https://github.com/o/r/blob/1/f', source: 'content' };

    it('revokes a token whoever owns it, recording where it was found; again: already revoked, nothing written', async () => {
      const owner = await newUser();
      const tokens = service();
      const { token, record } = await create(tokens, owner);
      expect(await tokens.revokeLeaked(token, reporter, sighting)).toEqual({ outcome: 'revoked', tokenId: record.id, userId: owner.id, name: 'script', hint: record.hint });
      expect(await tokens.verify(token, { ip: null })).toBeNull();
      expect((await tokens.list(owner.id))[0]).toMatchObject({ id: record.id, revoked: true, revokedAt: new Date(now) });
      expect(await tokens.revokeLeaked(token, reporter, sighting)).toMatchObject({ outcome: 'already_revoked', tokenId: record.id });
      const leaked = (await eventsFor(`token:${record.id}`)).filter((e) => e.action === 'credential.leaked');
      expect(leaked).toEqual([{ actor: 'reporter:github', action: 'credential.leaked', ip: null, details: { ...sighting, kind: 'personal_access_token', userId: owner.id, name: 'script', hint: record.hint } }]);
    });

    it('answers null for a value no token has, and looks nothing up for a mistyped one', async () => {
      const user = await newUser();
      const { token } = await create(service(), user);
      const { tokens, statements } = recordedService();
      expect(await tokens.revokeLeaked(tokenFormat.generate('personal_access_token'), reporter, sighting)).toBeNull();
      const before = statements.length;
      for (const bad of [token.slice(0, -1) + (token.endsWith('a') ? 'b' : 'a'), tokenFormat.generate('session'), 'garbage']) {
        expect(await tokens.revokeLeaked(bad, reporter, sighting)).toBeNull();
      }
      expect(statements.slice(before)).toEqual([]);
      expect(await tokens.verify(token, { ip: null })).not.toBeNull();
    });

    it('lets exactly one of 10 concurrent reports revoke, and writes one event', async () => {
      const user = await newUser();
      const tokens = service();
      const { token, record } = await create(tokens, user);
      const outcomes = await Promise.all(Array.from({ length: 10 }, () => tokens.revokeLeaked(token, reporter, sighting)));
      expect(outcomes.filter((o) => o?.outcome === 'revoked')).toHaveLength(1);
      expect(outcomes.filter((o) => o?.outcome === 'already_revoked')).toHaveLength(9);
      expect((await eventsFor(`token:${record.id}`)).filter((e) => e.action === 'credential.leaked')).toHaveLength(1);
    });
  });

  describe('rotate', () => {
    it('issues a new value with the same name, scopes and lifetime; the old one stops working', async () => {
      const user = await newUser();
      const tokens = service();
      const created = now;
      const old = await create(tokens, user, { name: 'harvester', scopes: ['deposit:write'], expiresInDays: 90 });
      now += 10 * DAY_MS;
      const rotated = await tokens.rotate(user, old.record.id, by(user));
      values.push(rotated.token);
      expect(rotated.token).not.toBe(old.token);
      expect(tokenFormat.parse(rotated.token)).toBe('personal_access_token');
      expect(rotated.record).toMatchObject({ name: 'harvester', scopes: ['deposit:write'], createdAt: new Date(now), expiresAt: new Date(now + 90 * DAY_MS), revoked: false });
      expect(rotated.record.id).not.toBe(old.record.id);
      expect(await tokens.verify(old.token, { ip: null })).toBeNull();
      expect(await tokens.verify(rotated.token, { ip: null })).toMatchObject({ tokenId: rotated.record.id, scopes: ['deposit:write'] });
      expect((await storedRow(old.record.id)).revoked_at).toEqual(new Date(now));
      expect(created).toBeLessThan(now);
      const events = await eventsFor(`token:${old.record.id}`);
      expect(events.map((e) => e.action)).toEqual(['token.created', 'token.rotated', 'token.failed_use']);
      expect(events[1]!.details).toEqual({
        userId: user.id,
        name: 'harvester',
        hint: old.record.hint,
        newTokenId: rotated.record.id,
        newHint: rotated.record.hint,
        scopes: ['deposit:write'],
        expiresAt: new Date(now + 90 * DAY_MS).toISOString(),
      });
    });

    it('keeps a token without expiry without expiry', async () => {
      const user = await newUser();
      const tokens = service({ allowNoExpiry: true });
      const old = await create(tokens, user, { name: 'forever', expiresInDays: null });
      const rotated = await tokens.rotate(user, old.record.id, by(user));
      values.push(rotated.token);
      expect(rotated.record.expiresAt).toBeNull();
    });

    it('keeps only the scopes the user still holds, and refuses (changing nothing) when none is left', async () => {
      const user = await newUser(['read', 'deposit:write']);
      const tokens = service();
      const old = await create(tokens, user, { name: 'both', scopes: ['read', 'deposit:write'] });
      const narrowed = { ...user, allowedScopes: ['read'] };
      const rotated = await tokens.rotate(narrowed, old.record.id, by(user));
      values.push(rotated.token);
      expect(rotated.record.scopes).toEqual(['read']);
      const conflict = await failure(tokens.rotate({ ...user, allowedScopes: ['deposit:actions'] }, rotated.record.id, by(user)));
      expect(conflict.status).toBe(409);
      expect(await tokens.verify(rotated.token, { ip: null })).not.toBeNull();
      expect((await tokens.list(user.id)).filter((t) => !t.revoked)).toHaveLength(1);
    });

    it('answers 404 for another user’s, a revoked or an expired token, changing nothing', async () => {
      const owner = await newUser();
      const stranger = await newUser();
      const tokens = service();
      const live = await create(tokens, owner, { name: 'live' });
      expect((await failure(tokens.rotate(stranger, live.record.id, by(stranger)))).status).toBe(404);
      expect(await tokens.verify(live.token, { ip: null })).not.toBeNull();
      now += 1000;
      const revoked = await create(tokens, owner, { name: 'revoked' });
      await tokens.revoke(owner.id, revoked.record.id, by(owner));
      expect((await failure(tokens.rotate(owner, revoked.record.id, by(owner)))).status).toBe(404);
      now += 1000;
      const expiring = await create(tokens, owner, { name: 'expiring', expiresInDays: 1 });
      now += DAY_MS;
      expect((await failure(tokens.rotate(owner, expiring.record.id, by(owner)))).status).toBe(404);
      expect((await storedRow(expiring.record.id)).revoked_at).toBeNull();
      expect((await tokens.list(owner.id)).map((t) => t.name)).toEqual(['expiring', 'revoked', 'live']);
    });

    it('lets exactly one of 5 concurrent rotations succeed', async () => {
      const user = await newUser();
      const tokens = service();
      const { record } = await create(tokens, user);
      now += 1000;
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => tokens.rotate(user, record.id, by(user))));
      const fulfilled = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<PersonalTokenService['rotate']>>> => r.status === 'fulfilled');
      expect(fulfilled).toHaveLength(1);
      values.push(fulfilled[0]!.value.token);
      expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason.status === 404)).toBe(true);
      expect((await tokens.list(user.id)).map((t) => t.revoked)).toEqual([false, true]);
    });
  });

  describe('audit', () => {
    it('records creation with the hint, scopes and expiry, never the value', async () => {
      const user = await newUser();
      const { token, record } = await create(service(), user, { name: 'audited', scopes: ['read'], expiresInDays: 7 });
      expect(await eventsFor(`token:${record.id}`)).toEqual([
        {
          actor: `user:${user.id}`,
          action: 'token.created',
          ip: '198.51.100.7',
          details: { userId: user.id, name: 'audited', hint: token.slice(0, 12), scopes: ['read'], expiresAt: new Date(now + 7 * DAY_MS).toISOString() },
        },
      ]);
    });

    it('records a failed use of an unknown, revoked or expired token, once a minute per token', async () => {
      const user = await newUser();
      const tokens = service();
      const unknown = tokenFormat.generate('personal_access_token');
      values.push(unknown);
      for (let i = 0; i < 5; i++) expect(await tokens.verify(unknown, { ip: '203.0.113.66' })).toBeNull();
      expect(await failedUses(tokenFormat.hint(unknown))).toEqual([
        { actor: 'ip:203.0.113.66', subject: null, ip: '203.0.113.66', details: { hint: tokenFormat.hint(unknown), reason: 'unknown' } },
      ]);
      now += 60_000;
      await tokens.verify(unknown, { ip: '203.0.113.66' });
      expect(await failedUses(tokenFormat.hint(unknown))).toHaveLength(2);

      const revoked = await create(tokens, user, { name: 'revoked' });
      await tokens.revoke(user.id, revoked.record.id, by(user));
      await tokens.verify(revoked.token, { ip: null });
      await tokens.verify(revoked.token, { ip: null });
      const expired = await create(tokens, user, { name: 'expired', expiresInDays: 1 });
      now += DAY_MS;
      await tokens.verify(expired.token, { ip: null });
      const disabledOwner = await newUser();
      const ofDisabled = await create(tokens, disabledOwner, { name: 'disabled owner' });
      await users.setDisabled(disabledOwner.id, true);
      await tokens.verify(ofDisabled.token, { ip: null });
      const cases = [
        { created: revoked, reason: 'revoked', owner: user },
        { created: expired, reason: 'expired', owner: user },
        { created: ofDisabled, reason: 'owner_disabled', owner: disabledOwner },
      ];
      for (const { created, reason, owner } of cases) {
        expect(await failedUses(created.record.hint)).toEqual([
          { actor: 'anonymous', subject: `token:${created.record.id}`, ip: null, details: { hint: created.record.hint, reason, userId: owner.id } },
        ]);
      }
    });

    it('caps failed-use events over all tokens, and counts the ones left out', async () => {
      const { tokens, statements } = recordedService({ failedUseAuditsPerMinute: 3 });
      const flood = Array.from({ length: 20 }, () => tokenFormat.generate('personal_access_token'));
      values.push(...flood);
      for (const value of flood) expect(await tokens.verify(value, { ip: '203.0.113.99' })).toBeNull();
      const inserts = () => statements.filter((sql) => sql.startsWith('INSERT INTO audit_events')).length;
      expect(inserts()).toBe(3);
      now += 60_000;
      const next = tokenFormat.generate('personal_access_token');
      values.push(next);
      await tokens.verify(next, { ip: '203.0.113.99' });
      expect(inserts()).toBe(4);
      expect((await failedUses(tokenFormat.hint(next))).at(-1)!.details).toEqual({ hint: tokenFormat.hint(next), reason: 'unknown', suppressed: 17 });
    });
  });

  it('never stored a token value: no row of personal_tokens or audit_events contains one', async () => {
    expect(values.length).toBeGreaterThan(40);
    for (const table of ['personal_tokens', 'audit_events']) {
      const { rows } = await database.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM ${table} t`);
      expect(rows.length).toBeGreaterThan(0);
      for (const { row } of rows) {
        for (const value of values) {
          expect(row).not.toContain(value);
          // Nor the random part without its prefix.
          expect(row).not.toContain(value.slice(8));
        }
      }
    }
    // The audit log does not hold digests either: only hints.
    const { rows } = await database.query<{ row: string }>('SELECT row_to_json(t)::text AS row FROM audit_events t');
    const digests = values.map((value) => tokenFormat.digest(value));
    for (const { row } of rows) for (const digest of digests) expect(row).not.toContain(digest);
  });
});
