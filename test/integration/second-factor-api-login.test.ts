import { describe, expect, it } from '@jest/globals';
import type { User } from '../../src/accounts/user.ts';
import { documentedFetch } from '../support/documented-answers.ts';
import { oathtoolTotp } from '../support/oathtool.ts';
import { recordSecret } from '../support/secret-ledger.ts';
import { runTessera } from '../support/cli-process.ts';
import { tesseraForSuite } from '../support/suite-tessera.ts';

// API password login (POST /users/{name}/login, ArchivesSpace style) of accounts with two-step
// sign-in, through the real HTTP route on the real PostgreSQL and Redis: `otp` missing, wrong,
// reused or right (codes from oathtool), a recovery code once, the operator's policy, the limit.
describe('API password login with a second factor', () => {
  const suite = tesseraForSuite({}, { secondFactor: { requiredForScopes: ['deposit:actions'], failuresPerAccount: 3 } });
  const fetch = documentedFetch(() => suite.tessera.url);
  const actor = { ip: '127.0.0.1', userAgent: 'jest' };
  let address = 0;

  async function login(username: string, fields: Record<string, string>, as: 'form' | 'json' = 'form') {
    const headers = { 'x-forwarded-for': `203.0.113.${++address}`, 'content-type': as === 'json' ? 'application/json' : 'application/x-www-form-urlencoded' };
    const res = await fetch(`${suite.tessera.url}/users/${username}/login`, { method: 'POST', headers, body: as === 'json' ? JSON.stringify(fields) : new URLSearchParams(fields) });
    return { status: res.status, body: (await res.json()) as { message?: string; errors?: { field: string; code: string }[]; session?: string }, headers: res.headers };
  }

  /** A user with an authenticator app set up (the code of now spent by the enrolment). */
  async function enrolledUser(username: string, scopes = ['read']): Promise<{ user: User; secret: string; recoveryCodes: string[] }> {
    const { accounts, secondFactors } = suite.tessera.core;
    const user = await accounts.createUser({ username, password: `${username}-password`, scopes }, { actor: 'test' });
    const { secret } = await secondFactors.beginTotp(user);
    recordSecret('totp_secret', secret);
    const { recoveryCodes } = await secondFactors.confirmTotp(user, oathtoolTotp(secret), actor);
    for (const code of recoveryCodes) recordSecret('recovery_code', code);
    return { user, secret, recoveryCodes };
  }

  it('asks for otp, refuses a wrong or reused one, and logs in with the right one', async () => {
    const { secret } = await enrolledUser('otp-user');
    const missing = await login('otp-user', { password: 'otp-user-password' });
    expect(missing.status).toBe(401);
    expect(missing.body.message).toContain('send otp');
    expect(missing.body.errors).toEqual([{ field: 'otp', code: 'required', message: expect.any(String) }]);

    const wrong = await login('otp-user', { password: 'otp-user-password', otp: '000000' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errors).toEqual([{ field: 'otp', code: 'invalid', message: expect.any(String) }]);

    // The next step's code: the enrolment spent the current one.
    const code = oathtoolTotp(secret, Date.now() + 30_000);
    const ok = await login('otp-user', { password: 'otp-user-password', otp: code }, 'json');
    expect(ok.status).toBe(200);
    expect(ok.body.session).toMatch(/^tsr_ses_/);
    const again = await login('otp-user', { password: 'otp-user-password', otp: code });
    expect(again.status).toBe(401);
    expect(again.body.errors?.[0]).toMatchObject({ field: 'otp', code: 'invalid' });

    // A wrong password with a right code is still a failed login, and says nothing of the code.
    const badPassword = await login('otp-user', { password: 'not-the-password', otp: oathtoolTotp(secret, Date.now() + 30_000) });
    expect(badPassword.status).toBe(401);
    // The answer of any failed login (it also tells accounts from a provider to use personal tokens).
    expect(badPassword.body.message).toMatch(/^Login failed: wrong username or password\./);
    expect(badPassword.body.errors).toBeUndefined();
  });

  it('takes a recovery code as otp, once', async () => {
    const { recoveryCodes } = await enrolledUser('recovery-user');
    const code = recoveryCodes[0]!;
    expect((await login('recovery-user', { password: 'recovery-user-password', otp: code })).status).toBe(200);
    const reused = await login('recovery-user', { password: 'recovery-user-password', otp: code });
    expect(reused.status).toBe(401);
    expect(reused.body.errors?.[0]).toMatchObject({ field: 'otp', code: 'invalid' });
  });

  it('refuses an account the policy requires a factor of until it has one', async () => {
    await suite.tessera.core.accounts.createUser({ username: 'publisher', password: 'publisher-password', scopes: ['read', 'deposit:actions'] }, { actor: 'test' });
    const refused = await login('publisher', { password: 'publisher-password' });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toContain('must use two-step sign-in');
    expect(refused.body.message).toContain('/settings/two-factor');
    // Without the scope the policy names, the same kind of account logs in with its password alone.
    await suite.tessera.core.accounts.createUser({ username: 'reader', password: 'reader-password', scopes: ['read'] }, { actor: 'test' });
    expect((await login('reader', { password: 'reader-password' })).status).toBe(200);
  });

  it("lets an administrator remove every second factor of an account that lost them (tessera user reset-second-factor)", async () => {
    await enrolledUser('lost-phone');
    expect((await login('lost-phone', { password: 'lost-phone-password' })).status).toBe(401);
    const env = { DATABASE_URL: suite.tessera.config.database.url!, TESSERA_REDIS_PREFIX: suite.tessera.config.redis.keyPrefix };
    const reset = await runTessera(['user', 'reset-second-factor', 'lost-phone'], env);
    expect(reset.stderr).toBe('');
    expect(reset.stdout).toMatch(/^Removed the authenticator app, 10 recovery codes of lost-phone: the password alone signs in now\.$/m);
    expect((await login('lost-phone', { password: 'lost-phone-password' })).status).toBe(200);
    const again = await runTessera(['user', 'reset-second-factor', 'lost-phone'], env);
    expect(again.stdout).toMatch(/lost-phone had no second factor\./);
    const { rows } = await suite.tessera.core.database.query<{ actor: string; details: { totp: boolean; recoveryCodes: number } }>("SELECT actor, details FROM audit_events WHERE action = 'second_factor.reset' ORDER BY id");
    expect(rows[0]).toMatchObject({ actor: expect.stringMatching(/^cli:/), details: { totp: true, recoveryCodes: 10, passkeys: 0 } });
  }, 60_000);

  it('refuses every otp, right ones too, after too many wrong ones for the account', async () => {
    const { secret } = await enrolledUser('guessed-user');
    for (let i = 0; i < 3; i++) expect((await login('guessed-user', { password: 'guessed-user-password', otp: `00000${i}` })).status).toBe(401);
    const limited = await login('guessed-user', { password: 'guessed-user-password', otp: oathtoolTotp(secret, Date.now() + 30_000) });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
