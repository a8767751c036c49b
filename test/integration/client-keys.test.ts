import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { createAuditLog } from '../../src/audit/audit-log.ts';
import { loadConfig } from '../../src/config/load.ts';
import { declaredClientSchema, type ClientJwks } from '../../src/config/schema.ts';
import { AppError } from '../../src/shared/errors.ts';
import { createClientService, type ClientService } from '../../src/clients/client-service.ts';
import { digestClientSecret, generateClientSecret } from '../../src/clients/client-secret.ts';
import type { Database } from '../../src/store/sql/database.ts';
import { migrate, readMigrations } from '../../src/store/sql/migrations.ts';
import { createPostgresDatabase } from '../../src/store/sql/postgres-database.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';
import { providerReadingClients } from '../support/client-metadata-provider.ts';

const CATALOG = { read: 'Read', 'deposit:write': 'Write' };
const RESOURCES = { 'urn:tessera:api': { format: 'opaque' as const } };
const DEFAULT_RESOURCE = 'urn:tessera:api';

/** A fresh key pair: the public JWK (with kid) to register, the private JWK that must never be. */
async function keyPair(alg: 'ES256' | 'ES384' | 'ES512' | 'EdDSA' | 'RS256' | 'PS256', kid?: string): Promise<{ publicJwk: JWK; privateJwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const publicJwk = { ...(await exportJWK(publicKey)), ...(kid ? { kid } : {}) };
  const privateJwk = { ...(await exportJWK(privateKey)), ...(kid ? { kid } : {}) };
  return { publicJwk, privateJwk };
}

/** An RSA public JWK of a given size, made with node:crypto (jose refuses to make small ones). */
function rsaPublicJwk(modulusLength: number): JWK {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength });
  return publicKey.export({ format: 'jwk' }) as JWK;
}

async function failure(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

/** The field errors of a validation failure, as "field: message". */
async function problems(promise: Promise<unknown>): Promise<string[]> {
  const error = await failure(promise);
  expect(error.status).toBe(400);
  return (error.errors ?? []).map((e) => `${e.field}: ${e.message}`);
}

describe('clients with public keys (private_key_jwt) on PostgreSQL', () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let clients: ClientService;
  const by = { actor: 'test:operator' };
  const rotated: string[] = [];
  /** Every private key made in this file: none may reach the database or the audit log. */
  const privateParts: string[] = [];
  let declaredKey: { publicJwk: JWK; privateJwk: JWK };

  const remember = (pair: { publicJwk: JWK; privateJwk: JWK }) => {
    privateParts.push(pair.privateJwk.d!);
    return pair;
  };

  async function storedRow(clientId: string): Promise<Record<string, unknown> | null> {
    const { rows } = await database.query<{ row: Record<string, unknown> }>('SELECT row_to_json(c) AS row FROM clients c WHERE client_id = $1', [clientId]);
    return rows[0]?.row ?? null;
  }

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createPostgresDatabase({ url: testDatabase.url, poolSize: 4 });
    await migrate(database);
    declaredKey = remember(await keyPair('EdDSA', 'declared-1'));
    clients = createClientService({
      database,
      audit: createAuditLog(database),
      declared: [declaredClientSchema.parse({ clientId: 'declared-keys', name: 'Declared keys', kind: 'resource_server', jwks: { keys: [declaredKey.publicJwk] }, scopes: ['read'] })],
      scopeCatalog: CATALOG,
      resources: RESOURCES,
      defaultResource: DEFAULT_RESOURCE,
      listeners: [{ secretRotated: async (c) => void rotated.push(c.clientId) }],
    });
  });
  afterAll(async () => {
    await database.close();
    await testDatabase.drop();
  });

  it('creates a service client with keys: no secret, private_key_jwt, only the public members kept', async () => {
    const { publicJwk } = remember(await keyPair('ES256', 'harvester-2025'));
    const decorated = { ...publicJwk, use: 'sig', alg: 'ES256', key_ops: ['verify'], ext: true, x5t: 'ignored' };
    const { client, secret } = await clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', jwks: { keys: [decorated] } }, by);
    expect(secret).toBeNull();
    const kept = { kty: 'EC', crv: 'P-256', x: publicJwk.x, y: publicJwk.y, kid: 'harvester-2025', use: 'sig', alg: 'ES256' };
    expect(client).toMatchObject({ clientId: 'harvester', confidential: true, authMethod: 'private_key_jwt', jwks: { keys: [kept] }, keysRotatedAt: null });
    expect(client.jwks!.keys[0]).toEqual(kept);

    expect(await clients.findOidcMetadata('harvester')).toEqual({
      client_id: 'harvester',
      client_name: 'Harvester',
      token_endpoint_auth_method: 'private_key_jwt',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      jwks: { keys: [kept] },
      scope: 'read',
      tessera_kind: 'service',
      tessera_default_resource: DEFAULT_RESOURCE,
    });
    expect(await storedRow('harvester')).toMatchObject({ secret_sha256: null, jwks: { keys: [kept] }, keys_rotated_at: null });
    expect(await clients.find('harvester')).toMatchObject({ authMethod: 'private_key_jwt', jwks: { keys: [kept] } });
    expect((await clients.list()).find((c) => c.clientId === 'harvester')).toMatchObject({ authMethod: 'private_key_jwt' });

    const { rows } = await database.query<{ details: Record<string, unknown> }>(`SELECT details FROM audit_events WHERE action = 'client.created' AND subject = 'client:harvester'`);
    expect(rows[0]!.details).toMatchObject({
      kind: 'service',
      authMethod: 'private_key_jwt',
      keys: [{ kid: 'harvester-2025', kty: 'EC', crv: 'P-256', thumbprint: await calculateJwkThumbprint(publicJwk) }],
    });
  });

  it('says how every client authenticates, and keeps secret clients exactly as they were', async () => {
    const { secret } = await clients.create({ clientId: 'with-secret', name: 'With secret', kind: 'service' }, by);
    await clients.create({ clientId: 'laptop', name: 'Laptop', kind: 'device' }, by);
    expect(await clients.find('with-secret')).toMatchObject({ authMethod: 'client_secret_basic', jwks: null });
    expect(await clients.find('laptop')).toMatchObject({ authMethod: 'none', jwks: null });
    const metadata = await clients.findOidcMetadata('with-secret');
    expect(metadata).toMatchObject({ token_endpoint_auth_method: 'client_secret_basic', client_secret: digestClientSecret(secret!) });
    expect(metadata).not.toHaveProperty('jwks');
    expect(await clients.findOidcMetadata('laptop')).not.toHaveProperty('jwks');
  });

  it('accepts RSA (2048 bits or more), EC P-256/P-384/P-521 and Ed25519 keys, for every confidential kind', async () => {
    const keys = [
      rsaPublicJwk(2048),
      (await keyPair('PS256', 'rsa-pss')).publicJwk,
      { ...(await keyPair('ES384')).publicJwk, alg: 'ES384' },
      (await keyPair('ES512')).publicJwk,
      { ...(await keyPair('EdDSA', 'ed')).publicJwk, alg: 'EdDSA' },
    ];
    const api = await clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server', jwks: { keys } }, by);
    expect(api.secret).toBeNull();
    expect(api.client.jwks!.keys.map((k) => `${k.kty} ${k.crv ?? ''}`.trim())).toEqual(['RSA', 'RSA', 'EC P-384', 'EC P-521', 'OKP Ed25519']);
    const web = await clients.create(
      { clientId: 'portal', name: 'Portal', kind: 'web', redirectUris: ['https://portal.example.org/cb'], jwks: { keys: [(await keyPair('ES256')).publicJwk] } },
      by,
    );
    expect(await clients.findOidcMetadata(web.client.clientId)).toMatchObject({ token_endpoint_auth_method: 'private_key_jwt', grant_types: ['authorization_code', 'refresh_token'] });
  });

  it('refuses a private key, loudly, and stores nothing of it', async () => {
    const pair = remember(await keyPair('ES256', 'oops'));
    const refused = await problems(clients.create({ clientId: 'leaky', name: 'Leaky', kind: 'service', jwks: { keys: [pair.privateJwk] } }, by));
    expect(refused).toEqual([expect.stringMatching(/^jwks\.keys\.0: is a private key \(it has "d"\): register only the PUBLIC key\. Treat this private key as exposed/)]);

    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }) as JWK;
    privateParts.push(rsa.d!);
    const rsaRefused = await problems(clients.create({ clientId: 'leaky', name: 'Leaky', kind: 'service', jwks: { keys: [(await keyPair('EdDSA')).publicJwk, rsa] } }, by));
    expect(rsaRefused).toEqual([expect.stringMatching(/^jwks\.keys\.1: is a private key \(it has "d", "p", "q", "dp", "dq", "qi"\)/)]);

    const symmetric = await problems(clients.create({ clientId: 'leaky', name: 'Leaky', kind: 'service', jwks: { keys: [{ kty: 'oct', k: 'c2hhcmVkLXNlY3JldA' }] } }, by));
    expect(symmetric).toEqual([expect.stringMatching(/^jwks\.keys\.0\.kty: "oct" is a shared secret, not a public key/)]);
    expect(await clients.find('leaky')).toBeNull();
  });

  it('names what is wrong with each key', async () => {
    const es256 = (await keyPair('ES256')).publicJwk;
    const create = (jwks: unknown, kind: 'service' | 'device' = 'service') => problems(clients.create({ clientId: 'bad', name: 'Bad', kind, jwks }, by));

    expect(await create({ keys: [{ kty: 'DSA', y: 'AQAB' }] })).toEqual([
      'jwks.keys.0.kty: "DSA" is not accepted: give an RSA (2048 bits or more), EC (P-256, P-384, P-521) or OKP (Ed25519) public key',
    ]);
    expect(await create({ keys: [{ x: 'AQAB' }] })).toEqual([expect.stringMatching(/^jwks\.keys\.0\.kty: is missing: give an RSA/)]);
    expect(await create({ keys: [rsaPublicJwk(1024)] })).toEqual(['jwks.keys.0.n: the RSA modulus has 1024 bits: at least 2048 are required']);
    expect(await create({ keys: [{ ...es256, crv: 'secp256k1' }] })).toEqual([expect.stringMatching(/^jwks\.keys\.0\.crv: must be P-256, P-384 or P-521/)]);
    const x25519 = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
    expect(await create({ keys: [x25519] })).toEqual([expect.stringMatching(/^jwks\.keys\.0\.crv: must be Ed25519 for an OKP key/)]);
    expect(await create({ keys: [{ ...es256, kid: 'same' }, { ...(await keyPair('EdDSA')).publicJwk, kid: 'same' }] })).toEqual([
      'jwks.keys.1.kid: "same" is also the kid of key 0: kids must be unique',
    ]);
    expect(await create({ keys: [{ ...es256, kid: 'a' }, { ...es256, kid: 'b' }] })).toEqual(['jwks.keys.1: is the same key as key 0']);
    expect(await create({ keys: [{ ...es256, use: 'enc' }] })).toEqual(['jwks.keys.0.use: must be "sig" (the key verifies signed assertions), not "enc"']);
    expect(await create({ keys: [{ ...es256, alg: 'ES384' }] })).toEqual(['jwks.keys.0.alg: "ES384" does not fit an EC P-256 key (allowed: ES256)']);
    expect(await create({ keys: [{ ...es256, alg: 'HS256' }] })).toEqual([expect.stringMatching(/^jwks\.keys\.0\.alg: "HS256" does not fit/)]);
    // A point that is not on the curve.
    expect(await create({ keys: [{ ...es256, y: es256.x }] })).toEqual(['jwks.keys.0: is not a valid EC P-256 public key']);
    expect(await create({ keys: [{ ...es256, x: 'not base64url!' }] })).toEqual([expect.stringMatching(/^jwks\.keys\.0\.x: must be the base64url/)]);
    expect(await create({ keys: [] })).toEqual(['jwks.keys: must hold 1 to 10 keys, not 0']);
    expect(await create({ keys: Array.from({ length: 11 }, () => es256) })).toEqual(['jwks.keys: must hold 1 to 10 keys, not 11']);
    expect(await create(es256)).toEqual([expect.stringMatching(/^jwks\.keys: must be an array of public JWKs \(this looks like a single JWK/)]);
    expect(await create('{"keys": []}')).toEqual([expect.stringMatching(/^jwks: must be a JWK Set/)]);
    expect(await create({ keys: ['AQAB'] })).toEqual(['jwks.keys.0: must be a JWK (a JSON object)']);
    expect(await create({ keys: [es256] }, 'device')).toEqual(['jwks: a device client is public: it has no keys']);
    expect(await clients.find('bad')).toBeNull();
  });

  it('rotates keys: the new set replaces the old, is audited, and tells the listeners that end the client’s tokens', async () => {
    const next = remember(await keyPair('EdDSA', 'harvester-2026'));
    const before = (await clients.find('harvester'))!;
    const rotatedClient = await clients.rotateKeys('harvester', { keys: [before.jwks!.keys[0], next.publicJwk] }, by);
    expect(rotatedClient.jwks!.keys.map((k) => k.kid)).toEqual(['harvester-2025', 'harvester-2026']);
    expect(rotatedClient.keysRotatedAt).toBeInstanceOf(Date);
    expect(rotatedClient.secretRotatedAt).toBeNull();
    expect(rotated).toEqual(['harvester']);
    expect((await clients.findOidcMetadata('harvester'))!.jwks!.keys).toHaveLength(2);

    await clients.rotateKeys('harvester', { keys: [next.publicJwk] }, by);
    expect((await clients.findOidcMetadata('harvester'))!.jwks).toEqual({ keys: [{ ...next.publicJwk, kid: 'harvester-2026' }] });
    expect(rotated).toEqual(['harvester', 'harvester']);

    const { rows } = await database.query<{ details: { keys: { kid: string }[]; previousKeys: { kid: string }[] } }>(
      `SELECT details FROM audit_events WHERE action = 'client.keys_rotated' AND subject = 'client:harvester' ORDER BY id`,
    );
    expect(rows.map((r) => [r.details.previousKeys.map((k) => k.kid), r.details.keys.map((k) => k.kid)])).toEqual([
      [['harvester-2025'], ['harvester-2025', 'harvester-2026']],
      [['harvester-2025', 'harvester-2026'], ['harvester-2026']],
    ]);
  });

  it('keeps each client to the method it was created with', async () => {
    const keyClient = await failure(clients.rotateSecret('harvester', by));
    expect(keyClient.status).toBe(409);
    expect(keyClient.message).toMatch(/authenticates with private_key_jwt and has no secret: replace its public keys instead \(tessera client rotate-keys harvester/);

    const key = { keys: [(await keyPair('ES256')).publicJwk] };
    const secretClient = await failure(clients.rotateKeys('with-secret', key, by));
    expect(secretClient.status).toBe(409);
    expect(secretClient.message).toMatch(/authenticates with a client secret, not private_key_jwt/);
    expect((await failure(clients.rotateKeys('laptop', key, by))).message).toMatch(/device client: it is public and has no keys/);
    expect((await failure(clients.rotateKeys('no-such-client', key, by))).status).toBe(404);
    const declared = await failure(clients.rotateKeys('declared-keys', key, by));
    expect(declared.status).toBe(409);
    expect(declared.message).toMatch(/declared in the configuration: put its new public keys in its jwks/);
    expect(await problems(clients.rotateKeys('harvester', { keys: [(await keyPair('ES256')).privateJwk] }, by))).toEqual([expect.stringMatching(/^jwks\.keys\.0: is a private key/)]);
    expect(rotated).toEqual(['harvester', 'harvester']);
  });

  it('serves declared clients with keys, and oidc-provider accepts the metadata as private_key_jwt', async () => {
    expect(await clients.find('declared-keys')).toMatchObject({ source: 'config', authMethod: 'private_key_jwt', confidential: true });
    expect(await clients.findOidcMetadata('declared-keys')).toMatchObject({
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: declaredKey.publicJwk.x, kid: 'declared-1' }] },
    });
    expect(await clients.findOidcMetadata('declared-keys')).not.toHaveProperty('client_secret');

    const provider = await providerReadingClients((id) => clients.findOidcMetadata(id), Object.keys(CATALOG));
    for (const id of ['harvester', 'records-api', 'portal', 'declared-keys']) {
      const client = (await provider.Client.find(id))!;
      expect(client).toBeDefined();
      expect(client.clientAuthMethod).toBe('private_key_jwt');
      expect(client.clientSecret).toBeUndefined();
      expect(client.metadata()).toMatchObject({ jwks: (await clients.findOidcMetadata(id))!.jwks });
    }
  });

  it('never stores nor audits a private key', async () => {
    const { rows } = await database.query<{ all: string }>(
      `SELECT coalesce((SELECT json_agg(c)::text FROM clients c), '') || coalesce((SELECT json_agg(a)::text FROM audit_events a), '') AS all`,
    );
    expect(privateParts.length).toBeGreaterThan(3);
    for (const part of privateParts) expect(rows[0]!.all).not.toContain(part);
  });
});

describe('declared clients with keys (configuration)', () => {
  const base = { clientId: 'svc', name: 'Service', kind: 'service', scopes: ['read'] };
  const load = (client: Record<string, unknown>) => loadConfig({ env: {}, overrides: { clients: [client] } });

  it('accepts jwks instead of secretSha256, keeping only public members', async () => {
    const { publicJwk } = await keyPair('ES256', 'k1');
    const config = load({ ...base, jwks: { keys: [{ ...publicJwk, ext: true }] } });
    const expected: ClientJwks = { keys: [{ kty: 'EC', crv: 'P-256', x: publicJwk.x!, y: publicJwk.y!, kid: 'k1' }] };
    expect(config.clients[0]!.jwks).toEqual(expected);
  });

  it('refuses a private key, a bad key, both methods, and keys on a device client, naming the key', async () => {
    const { privateJwk, publicJwk } = await keyPair('ES256');
    const other = (await keyPair('EdDSA')).publicJwk;
    expect(() => load({ ...base, jwks: { keys: [privateJwk] } })).toThrow(/clients\.0\.jwks\.keys\.0: is a private key \(it has "d"\): register only the PUBLIC key/);
    expect(() => load({ ...base, jwks: { keys: [rsaPublicJwk(1024)] } })).toThrow(/clients\.0\.jwks\.keys\.0\.n: the RSA modulus has 1024 bits: at least 2048 are required/);
    expect(() => load({ ...base, jwks: { keys: [{ ...publicJwk, kid: 'a' }, { ...other, kid: 'a' }] } })).toThrow(
      /clients\.0\.jwks\.keys\.1\.kid: "a" is also the kid of key 0/,
    );
    expect(() => load({ ...base, jwks: publicJwk })).toThrow(/clients\.0\.jwks\.keys: must be an array of public JWKs \(this looks like a single JWK/);
    expect(() => load({ ...base, secretSha256: digestClientSecret(generateClientSecret()), jwks: { keys: [publicJwk] } })).toThrow(
      /clients\.0\.jwks: give either secretSha256 or jwks, not both/,
    );
    expect(() => load(base)).toThrow(/clients\.0\.secretSha256: is required for a service client, unless it has public keys in jwks/);
    expect(() => load({ ...base, kind: 'device', jwks: { keys: [publicJwk] } })).toThrow(/clients\.0\.jwks: a device client is public and has no keys/);
  });
});

describe('migration 0006_client_jwks', () => {
  let testDatabase: TestDatabase;
  let database: Database;
  const digest = digestClientSecret(generateClientSecret());
  const publicKey = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createPostgresDatabase({ url: testDatabase.url, poolSize: 2 });
  });
  afterAll(async () => {
    await database.close();
    await testDatabase.drop();
  });

  const insert = (kind: string, secret: string | null, jwks: unknown) =>
    database
      .query(`INSERT INTO clients (client_id, name, kind, secret_sha256, jwks, scopes) VALUES ($1, 'Row', $2, $3, $4::jsonb, ARRAY['read'])`, [
        `row-${Math.random().toString(36).slice(2)}`,
        kind,
        secret,
        jwks === null ? null : JSON.stringify(jwks),
      ])
      .then(
        () => 'inserted',
        (error: { constraint?: string }) => error.constraint ?? String(error),
      );

  it('applies over clients registered before it, which stay valid and authenticate as before', async () => {
    const migrations = await readMigrations();
    expect(migrations.map((m) => `${m.version}_${m.name}`)).toContain('6_client_jwks');
    await migrate(database, migrations.filter((m) => m.version < 6));
    await database.query(`INSERT INTO clients (client_id, name, kind, secret_sha256, scopes) VALUES ('old-service', 'Old', 'service', $1, ARRAY['read']), ('old-cli', 'Old CLI', 'device', NULL, ARRAY['read'])`, [digest]);
    // 0006 first, then the later ones (0007: introspection, not granted to rows from before it).
    expect((await migrate(database)).applied.map((m) => m.name)[0]).toBe('client_jwks');
    const { rows } = await database.query<{ client_id: string; jwks: unknown; keys_rotated_at: unknown; may_introspect: boolean }>(
      'SELECT client_id, jwks, keys_rotated_at, may_introspect FROM clients ORDER BY client_id',
    );
    expect(rows).toEqual([
      { client_id: 'old-cli', jwks: null, keys_rotated_at: null, may_introspect: false },
      { client_id: 'old-service', jwks: null, keys_rotated_at: null, may_introspect: false },
    ]);
  });

  it('lets device clients have neither, and every other kind exactly one of a secret or keys', async () => {
    const keys = { keys: [publicKey] };
    expect(await insert('device', null, null)).toBe('inserted');
    expect(await insert('device', digest, null)).toBe('clients_credential_by_kind');
    expect(await insert('device', null, keys)).toBe('clients_credential_by_kind');
    for (const kind of ['service', 'resource_server']) {
      expect(await insert(kind, digest, null)).toBe('inserted');
      expect(await insert(kind, null, keys)).toBe('inserted');
      expect(await insert(kind, digest, keys)).toBe('clients_credential_by_kind');
      expect(await insert(kind, null, null)).toBe('clients_credential_by_kind');
    }
  });

  it('holds only a JWK Set of 1 to 10 public keys', async () => {
    for (const shape of [{ keys: [] }, { keys: 'x' }, [publicKey], 'keys', { keys: [1] }, { keys: Array.from({ length: 11 }, () => publicKey) }]) {
      expect(await insert('service', null, shape)).toBe('clients_jwks_shape');
    }
    expect(await insert('service', null, { keys: [{ ...publicKey, d: 'private' }] })).toBe('clients_jwks_public_only');
    expect(await insert('service', null, { keys: [publicKey, { kty: 'oct', k: 'c2VjcmV0' }] })).toBe('clients_jwks_public_only');
    expect(await insert('service', null, { keys: Array.from({ length: 10 }, () => publicKey) })).toBe('inserted');
  });
});
