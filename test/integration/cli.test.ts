import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { openCore } from '../../src/core.ts';
import { runTessera } from '../support/cli-process.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const tessera = runTessera;

/**
 * Each test runs the real command several times, a process each; on the embedded database every
 * process opens PGlite (WebAssembly: 0.8–4.4 s alone, measured here, several times that while other suites load the
 * two cores). The limit only guards against a hang.
 */
const CLI_TEST_TIMEOUT_MS = 120_000;

/** Checks a password the way the server does, through a freshly opened core. */
async function passwordWorks(env: Record<string, string>, username: string, password: string): Promise<boolean> {
  const core = await openCore(loadConfig({ env: { TESSERA_ARGON2_MEMORY_KIB: '8192', TESSERA_ARGON2_TIME_COST: '1', ...env } }), createLogger({ level: 'silent' }));
  try {
    return (await core.accounts.authenticate(username, password)).ok;
  } finally {
    await core.database.close();
  }
}

function describeCliOn(name: string, setup: () => Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }>) {
  describe(`tessera CLI on ${name}`, () => {
    let env: Record<string, string>;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ env, cleanup } = await setup());
    });
    afterAll(async () => cleanup());

    it('migrates, creates a user whose password then checks, and lists it', async () => {
      const migrated = await tessera(['migrate'], env);
      expect(migrated).toMatchObject({ code: 0 });
      expect(migrated.stdout).toMatch(/Applied 1_users, 2_audit_events, 3_signing_keys, 4_clients, 5_personal_tokens, 6_client_jwks, 7_client_introspection, 8_audit_events_subject_index, 9_audit_events_actor_index, 10_audit_events_user_index, 11_audit_events_client_index, 12_audit_events_action_index, 13_audit_events_time_index, 14_audit_events_drop_time_indexes, 15_user_identities, 16_totp_factors, 17_recovery_codes, 18_passkey_credentials, 19_password_resets, 20_client_token_exchange; schema at 20\./);
      expect((await tessera(['migrate'], env)).stdout).toMatch(/Schema is up to date \(20\)/);

      const created = await tessera(['user', 'create', 'alice', '--email', 'alice@example.org', '--scopes', 'read,deposit:write', '--password-stdin'], env, 'a long enough password\n');
      expect(created.stderr).toBe('');
      expect(created.code).toBe(0);
      expect(created.stdout).toMatch(/^Created alice \([0-9a-f-]{36}\) with scopes read, deposit:write\.$/m);
      expect(await passwordWorks(env, 'alice', 'a long enough password')).toBe(true);
      expect(await passwordWorks(env, 'alice', 'another password')).toBe(false);

      const listed = await tessera(['user', 'list'], env);
      expect(listed.code).toBe(0);
      expect(listed.stdout).toMatch(/^alice\talice@example\.org\tread,deposit:write\tactive\t/m);
    }, CLI_TEST_TIMEOUT_MS);

    it('changes a password and disables and enables a user', async () => {
      expect((await tessera(['user', 'passwd', 'ALICE', '--password-stdin'], env, 'the second password\n')).code).toBe(0);
      expect(await passwordWorks(env, 'alice', 'the second password')).toBe(true);
      expect((await tessera(['user', 'disable', 'alice'], env)).stdout).toMatch(/alice is now disabled/);
      expect(await passwordWorks(env, 'alice', 'the second password')).toBe(false);
      expect((await tessera(['user', 'list'], env)).stdout).toMatch(/^alice\t.*\tdisabled\t/m);
      expect((await tessera(['user', 'enable', 'alice'], env)).code).toBe(0);
      expect(await passwordWorks(env, 'alice', 'the second password')).toBe(true);
    }, CLI_TEST_TIMEOUT_MS);

    it('reads the audit log: by user and action prefix, a page at a time, and exported as JSON lines', async () => {
      // alice's account so far: created, password changed, disabled, enabled (by the CLI's OS user).
      const listed = await tessera(['audit', '--user', 'alice', '--action', 'user.'], env);
      expect(listed.stderr).toBe('');
      expect(listed.code).toBe(0);
      const rows = listed.stdout.trim().split('\n');
      expect(rows[0]).toBe('TIME\tACTION\tACTOR\tSUBJECT\tIP\tDETAILS');
      expect(rows.slice(1).map((row) => row.split('\t')[1])).toEqual(['user.enabled', 'user.disabled', 'user.password_changed', 'user.created']);
      expect(rows[1]!.split('\t')[2]).toMatch(/^cli:/);

      const first = await tessera(['audit', '--user', 'alice', '--limit', '3', '--json'], env);
      const page = JSON.parse(first.stdout) as { events: { action: string; details: object }[]; next_cursor: string | null };
      expect(page.events.map((e) => e.action)).toEqual(['user.enabled', 'user.disabled', 'user.password_changed']);
      const second = JSON.parse((await tessera(['audit', '--user', 'alice', '--limit', '3', '--json', '--cursor', page.next_cursor!], env)).stdout) as typeof page;
      expect(second.events.map((e) => e.action)).toEqual(['user.created']);
      expect(second.next_cursor).toBeNull();

      const exported = await tessera(['audit', '--export', '--action', 'user.created'], env);
      const lines = exported.stdout.trim().split('\n').map((line) => JSON.parse(line) as { action: string; subject: string; occurred_at: string });
      expect(lines.map((l) => l.action)).toEqual(['user.created']);
      expect(lines[0]!.occurred_at).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(exported.stdout).not.toMatch(/a long enough password|the second password/);

      const refused = await tessera(['audit', '--action', "user' OR 1=1"], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/action: an action/);
      expect((await tessera(['audit', '--json', '--export'], env)).code).toBe(2);
      expect((await tessera(['audit', '--user', 'nobody-here'], env)).stderr).toMatch(/No user named "nobody-here"/);
    }, CLI_TEST_TIMEOUT_MS);

    it('rotates signing keys, and refuses to with a secret that cannot read the current ones', async () => {
      const right = { ...env, TESSERA_KEY_SECRET: 'the-servers-key-encryption-secret-0001' };
      expect((await tessera(['keys', 'rotate'], right)).code).toBe(0);
      const wrong = await tessera(['keys', 'rotate'], { ...env, TESSERA_KEY_SECRET: 'another-key-encryption-secret-000000002' });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/cannot decrypt signing key .*Nothing was changed/);
      const again = await tessera(['keys', 'rotate'], right);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/is now current[\s\S]*stays published until/);
      const listed = await tessera(['keys', 'list'], right);
      expect(listed.stdout.trim().split('\n').slice(1).map((line) => line.split('\t')[2])).toEqual(['current', 'retiring']);
    }, CLI_TEST_TIMEOUT_MS);

    it('explains what is wrong, with the documented exit codes', async () => {
      const short = await tessera(['user', 'create', 'bob', '--password-stdin'], env, 'short\n');
      expect(short.code).toBe(1);
      expect(short.stderr).toMatch(/password: must be at least 10 characters/);
      const taken = await tessera(['user', 'create', 'Alice', '--password-stdin'], env, 'a long enough password\n');
      expect(taken.code).toBe(1);
      expect(taken.stderr).toMatch(/already taken/);
      const scope = await tessera(['user', 'create', 'carol', '--scopes', 'read,root', '--password-stdin'], env, 'a long enough password\n');
      expect(scope.stderr).toMatch(/unknown scope "root"/);
      const missing = await tessera(['user', 'disable', 'nobody'], env);
      expect(missing).toMatchObject({ code: 1 });
      expect(missing.stderr).toMatch(/No user named "nobody"/);
      // Without the servers' REDIS_URL the lockouts live in the server's memory, out of the CLI's reach.
      const unlock = await tessera(['user', 'unlock', 'alice'], env);
      expect(unlock.code).toBe(1);
      expect(unlock.stderr).toMatch(/without Redis \(REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES\) .* restarting the server lifts every lockout/);
      const noTerminal = await tessera(['user', 'create', 'dave'], env);
      expect(noTerminal.code).toBe(2);
      expect(noTerminal.stderr).toMatch(/--password-stdin/);
      expect((await tessera(['user', 'frobnicate'], env)).code).toBe(2);
      expect((await tessera(['user', 'create', 'x', '--bogus'], env)).code).toBe(2);
      const badConfig = await tessera(['user', 'list'], { ...env, TESSERA_ARGON2_TIME_COST: 'lots' });
      expect(badConfig.code).toBe(78);
      expect(badConfig.stderr).toMatch(/TESSERA_ARGON2_TIME_COST \(passwords\.argon2\.timeCost\)/);
    }, CLI_TEST_TIMEOUT_MS);
  });
}

describeCliOn('PostgreSQL', async () => {
  const db: TestDatabase = await createTestDatabase();
  return { env: { DATABASE_URL: db.url }, cleanup: db.drop };
});

describeCliOn('the embedded database (PGlite)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-cli-'));
  return { env: { TESSERA_DATA_DIR: join(dir, 'db') }, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('tessera CLI help', () => {
  it('prints usage and exit codes', async () => {
    const help = await tessera(['--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/tessera user create <username>/);
    expect(help.stdout).toMatch(/Exit codes: 0 success, 1 failure, 2 wrong usage, 78 invalid configuration/);
    expect((await tessera([], {})).code).toBe(2);
  });
});

describe('tessera CLI arguments', () => {
  it('are checked before any database is opened: a usage error needs none, and creates none', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-cli-usage-'));
    try {
      const embedded = { TESSERA_DATA_DIR: join(dir, 'db') };
      // Nothing listens on port 1: a command that got as far as the database would fail (exit 1).
      const unreachable = { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' };
      const mistakes: Array<[string[], RegExp]> = [
        [['user', 'frobnicate'], /usage: tessera user create\|passwd/],
        [['user', 'disable'], /usage: tessera user disable <username>/],
        [['user', 'unlock', 'a', 'b'], /usage: tessera user unlock <username or e-mail>/],
        [['user', 'list', '--limit', '0'], /--limit must be 1–10000/],
        [['client', 'create', '--kind', 'device'], /usage: tessera client create/],
        [['client', 'create', '--kind', 'service', '--name', 'x', '--access-token-ttl', 'soon'], /--access-token-ttl must be a whole number of seconds/],
        [['client', 'rotate-keys', 'portal'], /usage: tessera client rotate-keys/],
        [['keys', 'shred'], /usage: tessera keys list\|rotate/],
        [['keys', 'list', '--all'], /Unknown option '--all'/],
      ];
      for (const [args, message] of mistakes) {
        for (const env of [embedded, unreachable]) {
          const run = await tessera(args, env);
          expect({ args, code: run.code, stdout: run.stdout }).toEqual({ args, code: 2, stdout: '' });
          expect(run.stderr).toMatch(message);
        }
      }
      await expect(access(embedded.TESSERA_DATA_DIR)).rejects.toMatchObject({ code: 'ENOENT' });
      // Without Redis, unlocking cannot reach the lockouts (the server's memory): said before the
      // database is opened, so it works while an embedded server holds the database.
      const unlock = await tessera(['user', 'unlock', 'alice'], embedded);
      expect(unlock).toMatchObject({ code: 1, stdout: '' });
      expect(unlock.stderr).toMatch(/without Redis \(REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES\) .* restarting the server lifts every lockout/);
      await expect(access(embedded.TESSERA_DATA_DIR)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, CLI_TEST_TIMEOUT_MS);
});
