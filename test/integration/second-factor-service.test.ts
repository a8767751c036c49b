import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createUserRepository, withoutSecret, type UserRepository } from '../../src/accounts/user-repository.ts';
import type { User } from '../../src/accounts/user.ts';
import { createAuditLog } from '../../src/audit/audit-log.ts';
import { createSecondFactorLimiter } from '../../src/second-factors/second-factor-limiter.ts';
import { createSecondFactorRepository } from '../../src/second-factors/second-factor-repository.ts';
import { createSecondFactorService, RECOVERY_CODE_COUNT, type SecondFactorService } from '../../src/second-factors/second-factor-service.ts';
import { createSecretBox } from '../../src/second-factors/secret-box.ts';
import { createPendingSignIns } from '../../src/second-factors/pending-sign-in.ts';
import { AppError } from '../../src/shared/errors.ts';
import { createRedisEphemeralStore } from '../../src/store/redis/redis-ephemeral-store.ts';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import type { Database } from '../../src/store/sql/database.ts';
import { migrate } from '../../src/store/sql/migrations.ts';
import { createPostgresDatabase } from '../../src/store/sql/postgres-database.ts';
import { oathtoolTotp } from '../support/oathtool.ts';
import { recordSecret } from '../support/secret-ledger.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';

// The second-factor service on the real PostgreSQL and Redis: enrolment confirmed by a code from
// oathtool, codes single-use per account (also under a race of concurrent requests), recovery codes
// spent once, wrong answers limited per account, keys encrypted at rest and re-sealed on rotation.

const OLD_KEY = 'old-second-factor-key-0123456789abcdefghijkl';
const NEW_KEY = 'new-second-factor-key-0123456789abcdefghijkl';

describe('second factors on PostgreSQL and Redis', () => {
  const prefix = uniqueRedisPrefix();
  let testDatabase: TestDatabase;
  let database: Database;
  let ephemeral: EphemeralStore;
  let users: UserRepository;
  let now = Date.parse('2031-05-01T08:00:00.000Z');
  const clock = () => now;
  const actor = { ip: '198.51.100.9', userAgent: 'jest' };
  const via = { ...actor, via: 'api' };

  let audit: ReturnType<typeof createAuditLog>;
  function service(keys: string[] = [OLD_KEY], failures = 5): SecondFactorService {
    audit = createAuditLog(database);
    return createSecondFactorService({
      repository: createSecondFactorRepository(database),
      box: async () => createSecretBox(keys),
      limiter: createSecondFactorLimiter(ephemeral, { failures, windowSeconds: 600 }),
      audit,
      issuerLabel: 'repo.example.org',
      requiredForScopes: ['admin'],
      clock,
    });
  }

  let count = 0;
  async function newUser(): Promise<User> {
    count++;
    return withoutSecret(await users.insert({ username: `mfa-user-${count}`, email: null, passwordHash: 'not-a-hash', allowedScopes: ['read'] }));
  }

  /** A user with a confirmed app: its secret (base32) and recovery codes. */
  async function enrolled(factors: SecondFactorService) {
    const user = await newUser();
    const { secret } = await factors.beginTotp(user);
    recordSecret('totp_secret', secret);
    const { recoveryCodes } = await factors.confirmTotp(user, oathtoolTotp(secret, now), actor);
    return { user, secret, recoveryCodes };
  }

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createPostgresDatabase({ url: testDatabase.url, poolSize: 20 });
    await migrate(database);
    ephemeral = await createRedisEphemeralStore({ url: TEST_REDIS_URL, keyPrefix: prefix, connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
    users = createUserRepository(database);
  });

  afterAll(async () => {
    await ephemeral?.close();
    await database?.close();
    await testDatabase?.drop();
    await dropRedisPrefix(prefix);
  });

  it('enrols an app only once a code from it is typed, and shows recovery codes once', async () => {
    const factors = service();
    const user = await newUser();
    const first = await factors.beginTotp(user);
    expect(first.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(new URL(first.uri).searchParams.get('secret')).toBe(first.secret);
    // Shown again while pending: the same key (a reload must not invalidate the scanned code).
    expect((await factors.beginTotp(user)).secret).toBe(first.secret);
    expect(await factors.status(user.id)).toEqual({ totp: 'pending', recoveryCodesLeft: 0 });
    // Pending is not a factor: sign-in does not ask for it, and a code does not pass.
    expect(await factors.hasFactor(user.id)).toBe(false);
    expect((await factors.check(user, oathtoolTotp(first.secret, now), via)).status).toBe('failed');

    const wrong = await factors.confirmTotp(user, '000000', actor).then(() => null, (e: unknown) => e);
    expect(wrong).toBeInstanceOf(AppError);
    expect((wrong as AppError).errors?.[0]?.field).toBe('code');
    const { recoveryCodes } = await factors.confirmTotp(user, oathtoolTotp(first.secret, now), actor);
    expect(recoveryCodes).toHaveLength(RECOVERY_CODE_COUNT);
    for (const code of recoveryCodes) expect(code).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
    expect(await factors.status(user.id)).toEqual({ totp: 'active', recoveryCodesLeft: RECOVERY_CODE_COUNT });
    await expect(factors.beginTotp(user)).rejects.toMatchObject({ status: 409 });

    // At rest: neither the key nor a recovery code is readable in the database.
    const { rows } = await database.query<{ secret_sealed: string }>('SELECT secret_sealed FROM totp_factors WHERE user_id = $1', [user.id]);
    expect(rows[0]!.secret_sealed).toMatch(/^v1\./);
    const dump = JSON.stringify((await database.query('SELECT * FROM totp_factors t, recovery_codes r WHERE t.user_id = $1 AND r.user_id = t.user_id', [user.id])).rows);
    expect(dump).not.toContain(first.secret);
    for (const code of recoveryCodes) expect(dump).not.toContain(code);
    const audit = await database.query<{ action: string }>("SELECT action FROM audit_events WHERE subject = $1 AND action LIKE 'second_factor.%'", [`user:${user.id}`]);
    expect(audit.rows.map((r) => r.action)).toEqual(['second_factor.enrolled']);
  });

  it('takes each code once per account, and no older code after a newer one', async () => {
    const factors = service();
    const { user, secret } = await enrolled(factors);
    // The enrolment spent the code of now; the next step's code (within the drift) works once.
    expect((await factors.check(user, oathtoolTotp(secret, now), via)).status).toBe('failed');
    now += 30_000;
    const code = oathtoolTotp(secret, now);
    expect(await factors.check(user, code, via)).toEqual({ status: 'passed', method: 'totp' });
    expect((await factors.check(user, code, via)).status).toBe('failed');
    // One step on, the previous step's code is still in the window but older than the one used.
    now += 30_000;
    expect((await factors.check(user, oathtoolTotp(secret, now - 30_000), via)).status).toBe('failed');
    expect((await factors.check(user, oathtoolTotp(secret, now), via)).status).toBe('passed');
  });

  it('lets exactly one of many concurrent sign-ins with one code pass', async () => {
    const factors = service([OLD_KEY], 100);
    const { user, secret } = await enrolled(factors);
    now += 30_000;
    const code = oathtoolTotp(secret, now);
    const results = await Promise.all(Array.from({ length: 25 }, () => factors.check(user, code, via)));
    expect(results.filter((r) => r.status === 'passed')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'failed')).toHaveLength(24);
  });

  it('spends a recovery code once, also under a race, and counts what is left', async () => {
    const factors = service([OLD_KEY], 100);
    const { user, recoveryCodes } = await enrolled(factors);
    for (const code of recoveryCodes) recordSecret('recovery_code', code);
    const [first, second] = recoveryCodes as [string, string];
    expect(await factors.check(user, first.toUpperCase(), via)).toEqual({ status: 'passed', method: 'recovery_code' });
    expect((await factors.check(user, first, via)).status).toBe('failed');
    const raced = await Promise.all(Array.from({ length: 20 }, () => factors.check(user, second.replace('-', ''), via)));
    expect(raced.filter((r) => r.status === 'passed')).toHaveLength(1);
    expect((await factors.status(user.id)).recoveryCodesLeft).toBe(RECOVERY_CODE_COUNT - 2);
    // A new set replaces the old one entirely.
    const fresh = await factors.regenerateRecoveryCodes(user, actor);
    expect((await factors.check(user, recoveryCodes[2]!, via)).status).toBe('failed');
    expect((await factors.check(user, fresh[0]!, via)).status).toBe('passed');
  });

  it('refuses every answer, right ones too, after too many wrong ones for the account', async () => {
    const factors = service([OLD_KEY], 3);
    const { user, secret } = await enrolled(factors);
    for (let i = 0; i < 3; i++) expect((await factors.check(user, '000000', via)).status).toBe('failed');
    now += 30_000;
    const limited = await factors.check(user, oathtoolTotp(secret, now), via);
    expect(limited).toMatchObject({ status: 'limited', limit: 3 });
    expect((limited as { retryAfterSeconds: number }).retryAfterSeconds).toBeGreaterThan(500);
    // (Written in the background: wait for them.)
    await audit.settled();
    const { rows } = await database.query<{ action: string }>("SELECT action FROM audit_events WHERE subject = $1 AND action LIKE 'sign_in.second_factor.%' ORDER BY id", [`user:${user.id}`]);
    expect(rows.map((r) => r.action)).toEqual([...Array<string>(3).fill('sign_in.second_factor.failed'), 'sign_in.second_factor.locked']);
  });

  it('opens keys sealed with an older key of the ring and re-seals them with the newest', async () => {
    const { user, secret } = await enrolled(service([OLD_KEY]));
    const sealedBefore = (await database.query<{ secret_sealed: string }>('SELECT secret_sealed FROM totp_factors WHERE user_id = $1', [user.id])).rows[0]!.secret_sealed;
    const rotated = service([NEW_KEY, OLD_KEY]);
    now += 30_000;
    expect((await rotated.check(user, oathtoolTotp(secret, now), via)).status).toBe('passed');
    const sealedAfter = (await database.query<{ secret_sealed: string }>('SELECT secret_sealed FROM totp_factors WHERE user_id = $1', [user.id])).rows[0]!.secret_sealed;
    expect(sealedAfter.split('.')[1]).not.toBe(sealedBefore.split('.')[1]);
    // Now only the new key is needed.
    now += 30_000;
    expect((await service([NEW_KEY]).check(user, oathtoolTotp(secret, now), via)).status).toBe('passed');
    // A box without the key it was sealed with cannot open it.
    now += 30_000;
    await expect(service([OLD_KEY]).check(user, oathtoolTotp(secret, now), via)).rejects.toThrow(/not configured/);
  });

  it('removes the app and its recovery codes', async () => {
    const factors = service();
    const { user, recoveryCodes } = await enrolled(factors);
    await factors.removeTotp(user, actor, 'password');
    expect(await factors.status(user.id)).toEqual({ totp: 'none', recoveryCodesLeft: 0 });
    expect((await factors.check(user, recoveryCodes[0]!, via)).status).toBe('failed');
    await expect(factors.removeTotp(user, actor, 'password')).rejects.toMatchObject({ status: 404 });
  });

  it('hands a pending sign-in out once: of many concurrent takes exactly one gets it', async () => {
    const pending = createPendingSignIns(ephemeral, { ttlSeconds: 300, clock });
    const value = await pending.create({ userId: '00000000-0000-4000-8000-000000000001', via: 'browser', returnTo: '/settings/tokens', enrol: false, firstFactor: 'password' });
    expect((await pending.find(value))?.returnTo).toBe('/settings/tokens');
    // Another last character (a value ending in "A" would be itself with "A"): one in 64 runs failed.
    const altered = `${value.slice(0, -1)}${value.endsWith('A') ? 'B' : 'A'}`;
    expect(await pending.find(altered)).toBeNull();
    const taken = await Promise.all(Array.from({ length: 20 }, () => pending.take(value)));
    expect(taken.filter(Boolean)).toHaveLength(1);
    expect(await pending.find(value)).toBeNull();
    // Past its life it is gone even where the store still had it.
    const late = await pending.create({ userId: '00000000-0000-4000-8000-000000000001', via: 'oauth', returnTo: '/interaction/x', interactionUid: 'x', enrol: false, firstFactor: 'password' });
    now += 301_000;
    expect(await pending.find(late)).toBeNull();
  });

  it('knows whom the policy requires to have a factor', () => {
    const factors = service();
    expect(factors.requiredByPolicy({ allowedScopes: ['read', 'admin'] })).toBe(true);
    expect(factors.requiredByPolicy({ allowedScopes: ['read'] })).toBe(false);
  });
});
