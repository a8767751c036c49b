import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { openCore } from '../../src/core.ts';
import { runTessera } from '../support/cli-process.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const tessera = runTessera;

async function keyPair(alg: 'ES256' | 'EdDSA', kid: string): Promise<{ publicJwk: JWK; privateJwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return { publicJwk: { ...(await exportJWK(publicKey)), kid }, privateJwk: { ...(await exportJWK(privateKey)), kid } };
}

describe('tessera client with public keys (--jwks-file), on PostgreSQL', () => {
  let db: TestDatabase;
  let dir: string;
  let env: Record<string, string>;
  let first: { publicJwk: JWK; privateJwk: JWK };
  let second: { publicJwk: JWK; privateJwk: JWK };
  const file = async (name: string, content: unknown) => {
    const path = join(dir, name);
    await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    return path;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'tessera-cli-keys-'));
    env = { DATABASE_URL: db.url };
    first = await keyPair('ES256', 'harvester-1');
    second = await keyPair('EdDSA', 'harvester-2');
  });
  afterAll(async () => {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('registers a client with the JWK Set of a file: no secret, private_key_jwt, its keys named', async () => {
    const created = await tessera(['client', 'create', '--kind', 'service', '--name', 'Harvester', '--id', 'harvester', '--jwks-file', await file('harvester.jwks.json', { keys: [first.publicJwk] })], env);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const thumbprint = await calculateJwkThumbprint(first.publicJwk);
    expect(created.stdout).toBe(
      [
        'Created the service client "Harvester" with scopes read.',
        'client_id:     harvester',
        'auth_method:   private_key_jwt (no secret: it signs client assertions with its private key)',
        `public_keys:   EC P-256, kid "harvester-1", thumbprint ${thumbprint}`,
        '',
      ].join('\n'),
    );
    expect(created.stdout).not.toMatch(/client_secret/);

    const shown = await tessera(['client', 'show', 'harvester'], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^authentication: +private_key_jwt \(assertions signed with its private key, verified with its public keys\)$/m);
    expect(shown.stdout).toMatch(new RegExp(`^public_keys: +EC P-256, kid "harvester-1", thumbprint ${thumbprint}$`, 'm'));
    expect(shown.stdout).toMatch(/^keys_rotated_at: +-$/m);
    expect(shown.stdout).not.toMatch(/secret_rotated_at/);
  });

  it('accepts a single JWK, and lists how every client authenticates', async () => {
    const single = await file('api.jwk.json', { ...second.publicJwk, kid: 'api-1' });
    const created = await tessera(['client', 'create', '--kind', 'resource_server', '--name', 'Records API', '--id', 'records-api', '--jwks-file', single], env);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^public_keys: +OKP Ed25519, kid "api-1", thumbprint [\w-]{43}$/m);
    expect((await tessera(['client', 'create', '--kind', 'service', '--name', 'Old style', '--id', 'old-style'], env)).stdout).toMatch(/client_secret: tsr_cs_/);
    expect((await tessera(['client', 'create', '--kind', 'device', '--name', 'CLI', '--id', 'cli'], env)).code).toBe(0);

    const listed = await tessera(['client', 'list'], env);
    expect(listed.stdout.split('\n')).toEqual([
      'CLIENT_ID\tKIND\tNAME\tSCOPES\tSOURCE\tAUTH',
      'cli\tdevice\tCLI\tread,offline_access\tdatabase\tnone',
      'harvester\tservice\tHarvester\tread\tdatabase\tprivate_key_jwt',
      'old-style\tservice\tOld style\tread\tdatabase\tclient_secret_basic',
      'records-api\tresource_server\tRecords API\tread\tdatabase\tprivate_key_jwt',
      '',
    ]);
  });

  it('refuses a private key without echoing it, and explains unreadable files', async () => {
    const leaked = await tessera(['client', 'create', '--kind', 'service', '--name', 'Leaky', '--id', 'leaky', '--jwks-file', await file('private.json', first.privateJwk)], env);
    expect(leaked.code).toBe(1);
    expect(leaked.stderr).toMatch(/jwks\.keys\.0: is a private key \(it has "d"\): register only the PUBLIC key\. Treat this private key as exposed/);
    expect(leaked.stderr + leaked.stdout).not.toContain(first.privateJwk.d);

    const notJson = await tessera(['client', 'create', '--kind', 'service', '--name', 'X', '--jwks-file', await file('broken.json', '{"keys": [')], env);
    expect(notJson).toMatchObject({ code: 1 });
    expect(notJson.stderr).toMatch(/--jwks-file .*broken\.json is not JSON: it must hold a JWK Set/);
    const missing = await tessera(['client', 'create', '--kind', 'service', '--name', 'X', '--jwks-file', join(dir, 'nothing-here.json')], env);
    expect(missing).toMatchObject({ code: 1 });
    expect(missing.stderr).toMatch(/Cannot read --jwks-file .*nothing-here\.json/);
    const device = await tessera(['client', 'create', '--kind', 'device', '--name', 'X', '--jwks-file', await file('ok.json', { keys: [second.publicJwk] })], env);
    expect(device.stderr).toMatch(/jwks: a device client is public: it has no keys/);
    expect((await tessera(['client', 'show', 'leaky'], env)).code).toBe(1);
  });

  it('replaces the keys of a client with rotate-keys, and keeps each client to its method', async () => {
    const rotated = await tessera(['client', 'rotate-keys', 'harvester', '--jwks-file', await file('next.json', { keys: [second.publicJwk] })], env);
    expect(rotated.stderr).toBe('');
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/^Replaced the public keys of harvester; assertions signed with any other key no longer work\.$/m);
    expect(rotated.stdout).toMatch(/^public_keys: +OKP Ed25519, kid "harvester-2"/m);
    const shown = (await tessera(['client', 'show', 'harvester'], env)).stdout;
    expect(shown).toMatch(/kid "harvester-2"/);
    expect(shown).not.toMatch(/kid "harvester-1"/);
    expect(shown).toMatch(/^keys_rotated_at: +\d{4}-\d\d-\d\dT/m);

    const core = await openCore(loadConfig({ env }), createLogger({ level: 'silent' }));
    try {
      expect(await core.clients.findOidcMetadata('harvester')).toMatchObject({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [second.publicJwk] } });
    } finally {
      await core.database.close();
    }

    const noFile = await tessera(['client', 'rotate-keys', 'harvester'], env);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toMatch(/usage: tessera client rotate-keys <client-id> --jwks-file PATH/);
    const secretOfKeyClient = await tessera(['client', 'rotate-secret', 'harvester'], env);
    expect(secretOfKeyClient.code).toBe(1);
    expect(secretOfKeyClient.stderr).toMatch(/replace its public keys instead \(tessera client rotate-keys harvester --jwks-file PATH\)/);
    const keysOfSecretClient = await tessera(['client', 'rotate-keys', 'old-style', '--jwks-file', join(dir, 'next.json')], env);
    expect(keysOfSecretClient.code).toBe(1);
    expect(keysOfSecretClient.stderr).toMatch(/authenticates with a client secret, not private_key_jwt/);
  });

  it('documents --jwks-file and rotate-keys in the help', async () => {
    const help = await tessera(['--help'], {});
    expect(help.stdout).toMatch(/\[--jwks-file PATH\]/);
    expect(help.stdout).toMatch(/tessera client rotate-keys <id> --jwks-file PATH/);
    const usage = await tessera(['client', 'frobnicate'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/create\|list\|show\|delete\|rotate-secret\|rotate-keys/);
  });
});
