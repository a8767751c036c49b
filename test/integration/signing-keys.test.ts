import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, importJWK, jwtVerify, SignJWT } from 'jose';
import { keysCommand } from '../../src/cli/key-commands.ts';
import { UsageError } from '../../src/cli/prompt.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { createSigningKeyStore, SigningKeyDecryptionError, type SigningAlgorithm } from '../../src/oauth/signing-keys.ts';
import type { Database } from '../../src/store/sql/database.ts';
import { migrate } from '../../src/store/sql/migrations.ts';
import { createPostgresDatabase } from '../../src/store/sql/postgres-database.ts';
import { openCore } from '../../src/core.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const SECRET = 'the key encryption secret of this test run';
const OTHER_SECRET = 'a different secret, as on a misconfigured node';
const START = Date.parse('2030-01-01T00:00:00Z');

interface StoredRow {
  kid: string;
  alg: string;
  public_jwk: Record<string, unknown>;
  encrypted_private_jwk: string;
  retire_after: Date | null;
}

describe('signing keys on PostgreSQL', () => {
  let testDatabase: TestDatabase;
  let database: Database;

  const rows = async () =>
    (await database.query<StoredRow>('SELECT kid, alg, public_jwk, encrypted_private_jwk, retire_after FROM signing_keys ORDER BY created_at')).rows;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createPostgresDatabase({ url: testDatabase.url, poolSize: 2 });
    await migrate(database);
  });
  afterAll(async () => {
    await database.close();
    await testDatabase.drop();
  });
  beforeEach(async () => {
    await database.exec('DELETE FROM signing_keys');
  });

  it('creates exactly one key when five nodes start at once', async () => {
    const nodes = await Promise.all(Array.from({ length: 5 }, () => createPostgresDatabase({ url: testDatabase.url, poolSize: 2 })));
    try {
      const results = await Promise.all(nodes.map((node) => createSigningKeyStore({ database: node, secret: SECRET, algorithm: 'ES256' }).ensureSigningKey()));
      expect(new Set(results.map((r) => r.kid)).size).toBe(1);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(await rows()).toHaveLength(1);
      const again = await createSigningKeyStore({ database, secret: SECRET, algorithm: 'ES256' }).ensureSigningKey();
      expect(again).toEqual({ kid: results[0]!.kid, created: false });
    } finally {
      await Promise.all(nodes.map((node) => node.close()));
    }
  });

  it('stores the private key only encrypted', async () => {
    const store = createSigningKeyStore({ database, secret: SECRET, algorithm: 'RS256' });
    const { kid } = await store.ensureSigningKey();
    const [row] = await rows();
    const { keys } = await store.loadJwks();
    const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const;

    expect(row!.kid).toBe(kid);
    expect(row!.public_jwk).toMatchObject({ kty: 'RSA', kid, alg: 'RS256', use: 'sig' });
    for (const member of privateMembers) expect(row!.public_jwk).not.toHaveProperty(member);
    expect(row!.encrypted_private_jwk).toMatch(/^v1\.[\w-]{16}\.[\w-]+\.[\w-]{22}$/);
    expect(() => JSON.parse(row!.encrypted_private_jwk)).toThrow();
    expect(JSON.stringify(row)).not.toMatch(/"d"/);
    const everythingStored = JSON.stringify(row) + Buffer.from(row!.encrypted_private_jwk.split('.')[2]!, 'base64url').toString('latin1');
    for (const member of privateMembers) {
      const value = keys[0]![member];
      expect(value).toEqual(expect.any(String));
      expect(everythingStored).not.toContain(value!);
    }
  });

  it('refuses a wrong secret, and a ciphertext moved to another kid, with a clear error', async () => {
    const { kid } = await createSigningKeyStore({ database, secret: SECRET, algorithm: 'ES256' }).ensureSigningKey();
    const misconfigured = createSigningKeyStore({ database, secret: OTHER_SECRET, algorithm: 'ES256' });
    await expect(misconfigured.loadJwks()).rejects.toThrow(`cannot decrypt signing key ${kid}: TESSERA_KEY_SECRET differs from the one the key was stored with`);
    await expect(misconfigured.loadJwks()).rejects.toBeInstanceOf(SigningKeyDecryptionError);

    // The kid is authenticated: the same ciphertext under another kid does not decrypt, even with the right secret.
    await database.query(
      `INSERT INTO signing_keys (kid, alg, public_jwk, encrypted_private_jwk, created_at, activated_at, retire_after)
       SELECT 'moved', alg, public_jwk, encrypted_private_jwk, created_at, activated_at, now() + interval '1 hour' FROM signing_keys WHERE kid = $1`,
      [kid],
    );
    await expect(createSigningKeyStore({ database, secret: SECRET, algorithm: 'ES256' }).loadJwks()).rejects.toThrow('cannot decrypt signing key moved');
  });

  it('rotates: the new key signs and comes first, the old one stays published for the window, then goes', async () => {
    let now = START;
    const store = createSigningKeyStore({ database, secret: SECRET, algorithm: 'ES256', clock: () => now });
    const { kid: first } = await store.ensureSigningKey();
    const oldToken = await sign(store, 'issued before the rotation');

    now += 1000;
    const rotation = await store.rotate(3600);
    const second = rotation.kid;
    expect(second).not.toBe(first);
    expect(rotation.pruned).toEqual([]);
    expect(rotation.retiring).toEqual([expect.objectContaining({ kid: first, state: 'retiring', retireAfter: new Date(now + 3600_000) })]);
    expect((await store.loadJwks()).keys.map((k) => k.kid)).toEqual([second, first]);
    expect((await store.listKeys()).map((k) => [k.kid, k.state])).toEqual([
      [second, 'current'],
      [first, 'retiring'],
    ]);
    // A token signed before the rotation still verifies; new tokens carry the new kid.
    expect((await verify(store, oldToken)).protectedHeader.kid).toBe(first);
    const newToken = await sign(store, 'issued after the rotation');
    expect((await verify(store, newToken)).protectedHeader.kid).toBe(second);

    now += 3600_000 - 1;
    expect((await store.loadJwks()).keys.map((k) => k.kid)).toEqual([second, first]);
    now += 1;
    expect((await store.loadJwks()).keys.map((k) => k.kid)).toEqual([second]);
    expect((await store.loadPublicJwks()).keys.map((k) => k.kid)).toEqual([second]);
    await expect(verify(store, oldToken)).rejects.toThrow();

    const third = await store.rotate(600);
    expect(third.pruned).toEqual([first]);
    expect(third.retiring.map((k) => k.kid)).toEqual([second]);
    expect((await rows()).map((r) => r.kid)).toEqual([second, third.kid]);
    expect((await store.loadJwks()).keys.map((k) => k.kid)).toEqual([third.kid, second]);
  });

  it('keeps the date of a key that was already retiring when rotating again', async () => {
    let now = START;
    const store = createSigningKeyStore({ database, secret: SECRET, algorithm: 'EdDSA', clock: () => now });
    const { kid: first } = await store.ensureSigningKey();
    await store.rotate(3600);
    now += 60_000;
    const again = await store.rotate(3600);
    expect(again.retiring.map((k) => [k.kid, k.retireAfter?.getTime()])).toEqual(
      expect.arrayContaining([
        [first, START + 3600_000],
        [expect.any(String), START + 60_000 + 3600_000],
      ]),
    );
    expect(await rows()).toHaveLength(3);
  });

  it.each<SigningAlgorithm>(['RS256', 'PS256', 'ES256', 'EdDSA'])('signs a JWT with the loaded %s key that verifies against the public JWKS', async (algorithm) => {
    await database.exec('DELETE FROM signing_keys');
    const store = createSigningKeyStore({ database, secret: SECRET, algorithm });
    const { kid } = await store.ensureSigningKey();
    const { keys } = await store.loadJwks();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kid, alg: algorithm, use: 'sig', d: expect.any(String) });

    const publicJwks = await store.loadPublicJwks();
    expect(publicJwks.keys.every((key) => !('d' in key))).toBe(true);
    const token = await sign(store, 'alice');
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(publicJwks), { issuer: 'https://tessera.test', audience: 'urn:tessera:api' });
    expect(payload.sub).toBe('alice');
    expect(protectedHeader).toMatchObject({ alg: algorithm, kid });
  });

  it('will not switch algorithm silently, and rotation switches it', async () => {
    const { kid } = await createSigningKeyStore({ database, secret: SECRET, algorithm: 'RS256' }).ensureSigningKey();
    const es256 = createSigningKeyStore({ database, secret: SECRET, algorithm: 'ES256' });
    await expect(es256.ensureSigningKey()).rejects.toThrow(`the current signing key ${kid} is RS256 but oauth.signingAlgorithm is ES256: run "tessera keys rotate"`);
    await es256.rotate(3600);
    expect((await es256.loadJwks()).keys.map((k) => k.alg)).toEqual(['ES256', 'RS256']);
    expect((await es256.ensureSigningKey()).created).toBe(false);
  });

  it('refuses to load an empty key set, which would make oidc-provider use its development keys', async () => {
    await expect(createSigningKeyStore({ database, secret: SECRET, algorithm: 'ES256' }).loadJwks()).rejects.toThrow(/there is no signing key/);
  });

  it('lists and rotates keys from the tessera keys command', async () => {
    const config = loadConfig({
      env: { DATABASE_URL: testDatabase.url, TESSERA_KEY_SECRET: SECRET, TESSERA_COOKIE_KEYS: 'a cookie key that is long enough to use', TESSERA_SIGNING_ALG: 'ES256' },
      overrides: { clients: [{ clientId: 'slow', name: 'Slow', kind: 'service', secretSha256: 'a'.repeat(64), scopes: ['read'], accessTokenTtlSeconds: 7200 }] },
    });
    const core = await openCore(config, createLogger({ level: 'silent' }));
    const lines: string[] = [];
    const io = { out: (line: string) => void lines.push(line) };
    try {
      await keysCommand(core, ['list'], io);
      expect(lines).toEqual(['No signing key yet: Tessera creates one when it starts.']);

      const { kid: first } = await createSigningKeyStore({ database: core.database, secret: SECRET, algorithm: 'ES256' }).ensureSigningKey();
      lines.length = 0;
      const before = Date.now();
      await keysCommand(core, ['rotate'], io);
      expect(lines[0]).toMatch(/^New signing key [\w-]{43} \(ES256\) is now current/);
      expect(lines[1]).toMatch(new RegExp(`^Key ${first} no longer signs; it stays published until (\\S+) `));
      // The longest access-token lifetime wins: the declared client's 7200 s over the default 3600 s.
      const retireAfter = Date.parse(/until (\S+) /.exec(lines[1]!)![1]!);
      expect(retireAfter).toBeGreaterThanOrEqual(before + 7200_000);
      expect(retireAfter).toBeLessThan(Date.now() + 7200_000 + 1000);

      lines.length = 0;
      await keysCommand(core, ['list'], io);
      expect(lines[0]).toBe('KID\tALG\tSTATE\tCREATED\tRETIRE_AFTER');
      expect(lines[1]).toMatch(/^[\w-]{43}\tES256\tcurrent\t\S+\t-$/);
      expect(lines[2]).toMatch(new RegExp(`^${first}\tES256\tretiring\t\\S+\t\\S+Z$`));

      await expect(keysCommand(core, ['shred'], io)).rejects.toBeInstanceOf(UsageError);
    } finally {
      await core.database.close();
    }
  });
});

type Store = ReturnType<typeof createSigningKeyStore>;

/** Signs as oidc-provider does: with the first key of the configured algorithm. */
async function sign(store: Store, subject: string): Promise<string> {
  const [key] = (await store.loadJwks()).keys;
  return new SignJWT({ scope: 'read' })
    .setProtectedHeader({ alg: key!.alg, kid: key!.kid, typ: 'at+jwt' })
    .setIssuer('https://tessera.test')
    .setAudience('urn:tessera:api')
    .setSubject(subject)
    .setIssuedAt()
    .sign(await importJWK(key!, key!.alg));
}

function verify(store: Store, token: string) {
  return store.loadPublicJwks().then((jwks) => jwtVerify(token, createLocalJWKSet(jwks), { issuer: 'https://tessera.test', audience: 'urn:tessera:api' }));
}
