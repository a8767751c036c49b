import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

// The backup docs/production.md describes, taken and restored with PostgreSQL's own tools: a
// Tessera with users, clients and a personal token on a database of its own, `pg_dump -Fc` of it,
// `pg_restore` into a fresh database, and a Tessera with the same key secret on the restored one
// (and an empty Redis, as after losing it). What lived in PostgreSQL answers as before; what lived
// in Redis is gone.

const PG_DUMP = '/usr/bin/pg_dump';
const PG_RESTORE = '/usr/bin/pg_restore';
const run = promisify(execFile);
const by = { actor: 'test' };

const secrets = {
  TESSERA_KEY_SECRET: 'backup-test-key-encryption-secret-0123456789',
  TESSERA_COOKIE_KEYS: 'backup-test-cookie-key-0123456789abcdefghij',
};

describe('a PostgreSQL backup taken with pg_dump and restored with pg_restore', () => {
  const prefixes = [uniqueRedisPrefix(), uniqueRedisPrefix()];
  let source: TestDatabase | undefined;
  let restored: TestDatabase | undefined;
  let dir: string;
  let before: TestTessera | undefined;
  let after: TestTessera | undefined;
  let personalToken: string;
  let revokedPersonalToken: string;
  let rsSecret: string;
  let accessTokenBefore: string;
  let keysBefore: string[];

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

  async function introspect(tessera: TestTessera, token: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${tessera.url}/oauth/introspect`, {
      method: 'POST',
      headers: { authorization: basic('records-api', rsSecret), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  }

  async function signingKeyIds(tessera: TestTessera): Promise<string[]> {
    const res = await fetch(`${tessera.url}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid).sort();
  }

  beforeAll(async () => {
    for (const tool of [PG_DUMP, PG_RESTORE]) {
      if (!existsSync(tool)) throw new Error(`${tool} is missing: this test backs up with PostgreSQL's own tools. Install them with apt-get install -y postgresql-client (.ci/run does).`);
    }
    dir = await mkdtemp(join(tmpdir(), 'tessera-backup-'));
    source = await createTestDatabase();
    before = await startTestTessera({ DATABASE_URL: source.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefixes[0]!, ...secrets });
    const { accounts, clients, personalTokens } = before.core;
    const alice = await accounts.createUser({ username: 'alice', password: 'alice-password-1', scopes: ['read', 'deposit:write'] }, by);
    await accounts.createUser({ username: 'bob', password: 'bob-password-22', scopes: ['read'] }, by);
    rsSecret = (await clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    const serviceSecret = (await clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
    personalToken = (await personalTokens.create(alice, { name: 'backed up', scopes: ['read'] }, by)).token;
    const revoked = await personalTokens.create(alice, { name: 'revoked before the backup', scopes: ['read'] }, by);
    revokedPersonalToken = revoked.token;
    await personalTokens.revoke(alice.id, revoked.record.id, by);
    // An OAuth access token lives in Redis only: no PostgreSQL backup holds it.
    const token = await fetch(`${before.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: basic('harvester', serviceSecret), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'read' }),
    });
    expect(token.status).toBe(200);
    accessTokenBefore = String(((await token.json()) as { access_token: string }).access_token);
    expect(await introspect(before, personalToken)).toMatchObject({ active: true, username: 'alice' });
    expect(await introspect(before, accessTokenBefore)).toMatchObject({ active: true, client_id: 'harvester' });
    keysBefore = await signingKeyIds(before);
    expect(keysBefore.length).toBeGreaterThan(0);
    await before.stop();
    before = undefined;

    // The backup, as docs/production.md says to take it, and its restore into an empty database.
    const dump = join(dir, 'tessera.dump');
    await run(PG_DUMP, ['--format=custom', '--file', dump, '--dbname', source.url]);
    expect((await stat(dump)).size).toBeGreaterThan(0);
    restored = await createTestDatabase();
    await run(PG_RESTORE, ['--exit-on-error', '--no-owner', '--dbname', restored.url, dump]);
    // Nothing can be read from the original any more: whatever answers below comes from the restore.
    await source.drop();
    source = undefined;

    after = await startTestTessera({ DATABASE_URL: restored.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefixes[1]!, ...secrets });
  }, 120_000);

  afterAll(async () => {
    await before?.stop();
    await after?.stop();
    await source?.drop();
    await restored?.drop();
    for (const prefix of prefixes) await dropRedisPrefix(prefix);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps personal tokens: one still introspects active, a revoked one stays inactive', async () => {
    expect(await introspect(after!, personalToken)).toMatchObject({ active: true, username: 'alice', scope: 'read' });
    expect(await introspect(after!, revokedPersonalToken)).toEqual({ active: false });
  });

  it('keeps users and their passwords: a user signs in, a wrong password is still refused', async () => {
    const signIn = (password: string) =>
      fetch(`${after!.url}/users/alice/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password }) });
    const res = await signIn('alice-password-1');
    expect(res.status).toBe(200);
    const session = String(((await res.json()) as { session: string }).session);
    expect(await introspect(after!, session)).toMatchObject({ active: true, username: 'alice' });
    expect((await signIn('not-alice-password')).status).toBe(401);
  });

  it('keeps clients with their secrets, and the signing keys, readable with the same TESSERA_KEY_SECRET', async () => {
    // The resource server's secret authenticated every introspection above; the keys are the same.
    expect(await signingKeyIds(after!)).toEqual(keysBefore);
    const users = await after!.core.accounts.listUsers({ limit: 10, offset: 0 });
    expect(users.map((user) => user.username).sort()).toEqual(['admin', 'alice', 'bob']);
  });

  it('is of no use without its TESSERA_KEY_SECRET: a Tessera with another one refuses to start on it', async () => {
    const other = { ...secrets, TESSERA_KEY_SECRET: 'another-key-encryption-secret-0123456789ab' };
    await expect(startTestTessera({ DATABASE_URL: restored!.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefixes[1]!, ...other })).rejects.toThrow(
      /TESSERA_KEY_SECRET differs from the one the key was stored with/,
    );
  });

  it('starts with a new TESSERA_KEY_SECRET once the old signing keys are deleted (docs/production.md#key-rotation): new keys, personal tokens unchanged', async () => {
    await after!.stop();
    after = undefined;
    const database = new pg.Client({ connectionString: restored!.url });
    await database.connect();
    try {
      await database.query('DELETE FROM signing_keys');
    } finally {
      await database.end();
    }
    const other = { ...secrets, TESSERA_KEY_SECRET: 'another-key-encryption-secret-0123456789ab' };
    after = await startTestTessera({ DATABASE_URL: restored!.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefixes[1]!, ...other });
    const keysNow = await signingKeyIds(after);
    expect(keysNow).toHaveLength(1);
    expect(keysBefore).not.toContain(keysNow[0]);
    expect(await introspect(after, personalToken)).toMatchObject({ active: true, username: 'alice' });
  });

  it('does not hold what lived in Redis: an OAuth access token issued before the backup is inactive on an empty Redis', async () => {
    expect(await introspect(after!, accessTokenBefore)).toEqual({ active: false });
  });
});
