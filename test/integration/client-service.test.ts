import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createAuditLog } from '../../src/audit/audit-log.ts';
import { clientCommand } from '../../src/cli/client-commands.ts';
import { UsageError } from '../../src/cli/prompt.ts';
import { declaredClientSchema } from '../../src/config/schema.ts';
import { AppError } from '../../src/shared/errors.ts';
import { createClientService, type ClientService } from '../../src/clients/client-service.ts';
import { CLIENT_SECRET_PATTERN, digestClientSecret, generateClientSecret, secretMatches } from '../../src/clients/client-secret.ts';
import type { Database } from '../../src/store/sql/database.ts';
import { migrate } from '../../src/store/sql/migrations.ts';
import { createPostgresDatabase } from '../../src/store/sql/postgres-database.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';
import { providerReadingClients } from '../support/client-metadata-provider.ts';

const CATALOG = { read: 'Read', 'deposit:write': 'Write', 'deposit:actions': 'Publish' };
const RESOURCES = { 'urn:tessera:api': { format: 'opaque' as const }, 'urn:tessera:files': { format: 'jwt' as const } };
const DEFAULT_RESOURCE = 'urn:tessera:api';
const DECLARED_API_SECRET = generateClientSecret();
const DECLARED = [
  declaredClientSchema.parse({ clientId: 'declared-cli', name: 'Declared CLI', kind: 'device', scopes: ['read', 'offline_access'] }),
  declaredClientSchema.parse({
    clientId: 'declared-api',
    name: 'Declared API',
    kind: 'resource_server',
    secretSha256: digestClientSecret(DECLARED_API_SECRET),
    scopes: ['read'],
    defaultResource: 'urn:tessera:files',
    accessTokenTtlSeconds: 600,
  }),
];

/** Rejects with the AppError `promise` fails with, so its fields can be inspected. */
async function failure(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

function fields(error: AppError): string[] {
  return (error.errors ?? []).map((e) => e.field).sort();
}

describe('client service on PostgreSQL', () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let clients: ClientService;
  const by = { actor: 'test:operator' };
  /** Every secret issued in this file, to prove none reaches the database or the audit log. */
  const issued: string[] = [DECLARED_API_SECRET];
  const deleted: string[] = [];
  const rotated: string[] = [];

  async function storedRow(clientId: string): Promise<string | null> {
    const { rows } = await database.query<{ row: string }>('SELECT row_to_json(c)::text AS row FROM clients c WHERE client_id = $1', [clientId]);
    return rows[0]?.row ?? null;
  }

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createPostgresDatabase({ url: testDatabase.url, poolSize: 4 });
    await migrate(database);
    clients = createClientService({
      database,
      audit: createAuditLog(database),
      declared: DECLARED,
      scopeCatalog: CATALOG,
      resources: RESOURCES,
      defaultResource: DEFAULT_RESOURCE,
      listeners: [{ deleted: async (c) => void deleted.push(c.clientId), secretRotated: async (c) => void rotated.push(c.clientId) }],
    });
  });
  afterAll(async () => {
    await database.close();
    await testDatabase.drop();
  });

  it('creates a public device client with a generated id, default scopes and no secret', async () => {
    const { client, secret } = await clients.create({ name: 'Research CLI', kind: 'device' }, by);
    expect(secret).toBeNull();
    expect(client).toMatchObject({ name: 'Research CLI', kind: 'device', confidential: false, source: 'database', scopes: ['read', 'offline_access'], redirectUris: [] });
    expect(client.clientId).toMatch(/^device-[0-9A-Za-z]{16}$/);
    expect(client.createdAt).toBeInstanceOf(Date);
    expect(client.secretRotatedAt).toBeNull();
    expect(await clients.findOidcMetadata(client.clientId)).toEqual({
      client_id: client.clientId,
      client_name: 'Research CLI',
      token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
      scope: 'read offline_access',
      tessera_kind: 'device',
      tessera_default_resource: DEFAULT_RESOURCE,
    });
    expect(JSON.parse((await storedRow(client.clientId))!)).toMatchObject({ kind: 'device', secret_sha256: null });
  });

  it('creates a service client whose secret is returned once and stored only as its digest', async () => {
    const { client, secret } = await clients.create(
      { clientId: 'ingest-worker', name: 'Ingest worker', kind: 'service', scopes: ['read', 'deposit:write'], accessTokenTtlSeconds: 900 },
      by,
    );
    issued.push(secret!);
    expect(secret).toMatch(CLIENT_SECRET_PATTERN);
    const digest = digestClientSecret(secret!);

    const row = (await storedRow('ingest-worker'))!;
    expect(row).not.toContain(secret);
    expect(row).not.toContain(secret!.slice(7));
    expect(JSON.parse(row)).toMatchObject({ secret_sha256: digest, secret_rotated_at: null, access_token_ttl_seconds: 900 });

    // Nothing the service hands out after creation carries the secret or its digest.
    for (const seen of [client, await clients.find('ingest-worker'), await clients.list()]) {
      expect(JSON.stringify(seen)).not.toContain(secret);
      expect(JSON.stringify(seen)).not.toContain(digest);
    }

    const metadata = await clients.findOidcMetadata('ingest-worker');
    expect(metadata).toEqual({
      client_id: 'ingest-worker',
      client_name: 'Ingest worker',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      client_secret: digest,
      scope: 'read deposit:write',
      tessera_kind: 'service',
      tessera_default_resource: DEFAULT_RESOURCE,
      tessera_access_token_ttl: 900,
    });
    expect(secretMatches(metadata!.client_secret!, secret!)).toBe(true);
    expect(secretMatches(metadata!.client_secret!, generateClientSecret())).toBe(false);
    expect(secretMatches(metadata!.client_secret!, digest)).toBe(false);
  });

  it('creates resource server and web clients with the metadata of their kind', async () => {
    const api = await clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server', defaultResource: 'urn:tessera:files' }, by);
    issued.push(api.secret!);
    expect(await clients.findOidcMetadata('records-api')).toEqual({
      client_id: 'records-api',
      client_name: 'Records API',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      client_secret: digestClientSecret(api.secret!),
      scope: 'read',
      tessera_kind: 'resource_server',
      tessera_default_resource: 'urn:tessera:files',
      tessera_may_introspect: true,
    });

    const web = await clients.create(
      {
        clientId: 'portal',
        name: 'Deposit portal',
        kind: 'web',
        scopes: ['openid', 'read', 'deposit:write', 'read'],
        redirectUris: ['https://portal.example.org/callback', 'http://localhost:3000/callback', 'http://127.0.0.1:3000/cb', 'http://[::1]:3000/cb'],
      },
      by,
    );
    issued.push(web.secret!);
    expect(web.client.scopes).toEqual(['openid', 'read', 'deposit:write']);
    expect(await clients.findOidcMetadata('portal')).toEqual({
      client_id: 'portal',
      client_name: 'Deposit portal',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['https://portal.example.org/callback', 'http://localhost:3000/callback', 'http://127.0.0.1:3000/cb', 'http://[::1]:3000/cb'],
      client_secret: digestClientSecret(web.secret!),
      scope: 'openid read deposit:write',
      tessera_kind: 'web',
      tessera_default_resource: DEFAULT_RESOURCE,
    });
    expect(await clients.findOidcMetadata('no-such-client')).toBeUndefined();
    expect(await clients.findOidcMetadata('not a valid id')).toBeUndefined();
  });

  it('gives oidc-provider metadata it accepts, holding the digest as the client secret', async () => {
    const provider = await providerReadingClients((id) => clients.findOidcMetadata(id), Object.keys(CATALOG));
    const device = (await clients.list()).find((c) => c.kind === 'device' && c.source === 'database')!;
    for (const id of [device.clientId, 'ingest-worker', 'records-api', 'portal', 'declared-cli', 'declared-api']) {
      const client = await provider.Client.find(id);
      expect(client).toBeDefined();
      const metadata = (await clients.findOidcMetadata(id))!;
      expect(client!.metadata()).toMatchObject({
        client_id: id,
        token_endpoint_auth_method: metadata.token_endpoint_auth_method,
        grant_types: metadata.grant_types,
        response_types: metadata.response_types,
        redirect_uris: metadata.redirect_uris,
        scope: metadata.scope,
        tessera_kind: metadata.tessera_kind,
        tessera_default_resource: metadata.tessera_default_resource,
      });
      expect(client!.metadata().tessera_may_introspect).toBe(metadata.tessera_may_introspect);
      expect(client!.clientSecret).toBe(metadata.client_secret);
    }
    const declaredApi = await provider.Client.find('declared-api');
    expect(secretMatches(declaredApi!.clientSecret!, DECLARED_API_SECRET)).toBe(true);
    expect(declaredApi!.metadata()).toMatchObject({ tessera_access_token_ttl: 600 });
  });

  it('rotates a secret: the new one matches, the old one stops matching at once', async () => {
    const { secret: first } = await clients.create({ clientId: 'nightly-export', name: 'Nightly export', kind: 'service' }, by);
    issued.push(first!);
    const second = await clients.rotateSecret('nightly-export', by);
    issued.push(second);
    expect(second).toMatch(CLIENT_SECRET_PATTERN);
    expect(second).not.toBe(first);
    const metadata = (await clients.findOidcMetadata('nightly-export'))!;
    expect(secretMatches(metadata.client_secret!, second)).toBe(true);
    expect(secretMatches(metadata.client_secret!, first!)).toBe(false);
    const row = JSON.parse((await storedRow('nightly-export'))!) as { secret_sha256: string; secret_rotated_at: string | null };
    expect(row.secret_sha256).toBe(digestClientSecret(second));
    expect(row.secret_rotated_at).not.toBeNull();
    expect((await clients.find('nightly-export'))!.secretRotatedAt).toBeInstanceOf(Date);
    expect(rotated).toEqual(['nightly-export']);
  });

  it('refuses to rotate what has no secret here: unknown, device and declared clients', async () => {
    const device = await clients.create({ clientId: 'laptop-cli', name: 'Laptop CLI', kind: 'device' }, by);
    expect((await failure(clients.rotateSecret('no-such-client', by))).status).toBe(404);
    const publicClient = await failure(clients.rotateSecret(device.client.clientId, by));
    expect(publicClient.status).toBe(409);
    expect(publicClient.message).toMatch(/public and has no secret/);
    const declared = await failure(clients.rotateSecret('declared-api', by));
    expect(declared.status).toBe(409);
    expect(declared.message).toMatch(/declared in the configuration/);
  });

  it('finds declared clients first, marks them as configuration, and refuses to delete them', async () => {
    const found = await clients.find('declared-api');
    expect(found).toMatchObject({ clientId: 'declared-api', kind: 'resource_server', source: 'config', confidential: true, defaultResource: 'urn:tessera:files', accessTokenTtlSeconds: 600 });
    expect(JSON.stringify(found)).not.toContain(DECLARED[1]!.secretSha256!);
    expect(await clients.findOidcMetadata('declared-api')).toEqual({
      client_id: 'declared-api',
      client_name: 'Declared API',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      client_secret: DECLARED[1]!.secretSha256,
      scope: 'read',
      tessera_kind: 'resource_server',
      tessera_default_resource: 'urn:tessera:files',
      tessera_access_token_ttl: 600,
      tessera_may_introspect: true,
    });
    expect(await clients.findOidcMetadata('declared-cli')).toMatchObject({ token_endpoint_auth_method: 'none', scope: 'read offline_access' });
    expect(await clients.findOidcMetadata('declared-cli')).not.toHaveProperty('client_secret');

    const listed = await clients.list();
    expect(listed.filter((c) => c.source === 'config').map((c) => c.clientId)).toEqual(['declared-api', 'declared-cli']);
    expect(listed.map((c) => c.clientId)).toEqual([...listed.map((c) => c.clientId)].sort());

    const refusal = await failure(clients.delete('declared-api', by));
    expect(refusal.status).toBe(409);
    expect(refusal.message).toMatch(/remove it from the "clients" list of the configuration/);
    expect(await clients.find('declared-api')).not.toBeNull();

    const collision = await failure(clients.create({ clientId: 'declared-cli', name: 'Impostor', kind: 'device' }, by));
    expect(collision.status).toBe(409);
    expect(collision.errors).toEqual([{ field: 'clientId', code: 'taken', message: 'declared in the configuration' }]);
    expect(await storedRow('declared-cli')).toBeNull();
  });

  it('prefers the declared client when a stored row has the same id', async () => {
    // A row created before the operator declared the same id in the configuration.
    await database.query(`INSERT INTO clients (client_id, name, kind, scopes) VALUES ('declared-cli', 'Old row', 'device', ARRAY['read'])`);
    expect(await clients.find('declared-cli')).toMatchObject({ name: 'Declared CLI', source: 'config' });
    expect(await clients.findOidcMetadata('declared-cli')).toMatchObject({ client_name: 'Declared CLI' });
    expect((await clients.list()).filter((c) => c.clientId === 'declared-cli')).toHaveLength(1);
    await database.query(`DELETE FROM clients WHERE client_id = 'declared-cli'`);
  });

  it('reports every invalid field at once', async () => {
    const error = await failure(
      clients.create(
        {
          clientId: 'bad id!',
          name: '  ',
          kind: 'web',
          scopes: ['read', 'admin:everything', 'toString'],
          redirectUris: ['http://portal.example.org/cb', 'ftp://files.example.org/cb', 'https://portal.example.org/cb#frag', 'not a url'],
          defaultResource: 'urn:nope',
          accessTokenTtlSeconds: 5,
        },
        by,
      ),
    );
    expect(error.status).toBe(400);
    expect(fields(error)).toEqual(
      ['accessTokenTtlSeconds', 'clientId', 'defaultResource', 'name', 'redirectUris.0', 'redirectUris.1', 'redirectUris.2', 'redirectUris.3', 'scopes.1', 'scopes.2'].sort(),
    );
    const messages = Object.fromEntries(error.errors!.map((e) => [e.field, e.message]));
    expect(messages['scopes.1']).toMatch(/unknown scope "admin:everything"/);
    expect(messages['defaultResource']).toMatch(/unknown resource "urn:nope"/);
    expect(messages['redirectUris.0']).toMatch(/https/);
    expect(messages['redirectUris.2']).toMatch(/fragment/);
  });

  it('checks what depends on the kind: redirect URIs, protocol scopes, the kind itself', async () => {
    expect(fields(await failure(clients.create({ name: 'No callback', kind: 'web' }, by)))).toEqual(['redirectUris']);
    expect(fields(await failure(clients.create({ name: 'Callback', kind: 'service', redirectUris: ['https://a.example/cb'] }, by)))).toEqual(['redirectUris']);
    expect(fields(await failure(clients.create({ name: 'Offline', kind: 'service', scopes: ['read', 'offline_access'] }, by)))).toEqual(['scopes.1']);
    expect(fields(await failure(clients.create({ name: 'OpenID', kind: 'resource_server', scopes: ['openid'] }, by)))).toEqual(['scopes.0']);
    expect(fields(await failure(clients.create({ name: 'Kindless', kind: 'robot' as never }, by)))).toEqual(['kind']);
    expect(fields(await failure(clients.create({ name: 'Scopeless', kind: 'device', scopes: [] }, by)))).toEqual(['scopes']);
    expect((await clients.list()).map((c) => c.name)).not.toEqual(expect.arrayContaining(['No callback', 'Callback', 'Offline', 'OpenID', 'Scopeless']));
  });

  it('answers 409 for a taken id, also when many create it at once', async () => {
    const taken = await failure(clients.create({ clientId: 'ingest-worker', name: 'Again', kind: 'service' }, by));
    expect(taken.status).toBe(409);
    expect(taken.errors).toEqual([{ field: 'clientId', code: 'taken', message: 'already taken' }]);
    expect(JSON.parse((await storedRow('ingest-worker'))!)).toMatchObject({ name: 'Ingest worker' });

    const results = await Promise.allSettled(Array.from({ length: 8 }, () => clients.create({ clientId: 'raced', name: 'Raced', kind: 'service' }, by)));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    issued.push((won[0] as PromiseFulfilledResult<{ secret: string | null }>).value.secret!);
    for (const lost of results.filter((r) => r.status === 'rejected')) expect((lost as PromiseRejectedResult).reason).toMatchObject({ status: 409 });
    const { rows } = await database.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_events WHERE action = 'client.created' AND subject = 'client:raced'`);
    expect(rows[0]!.n).toBe(1);
  });

  it('deletes a stored client, which then no longer exists anywhere', async () => {
    const { secret } = await clients.create({ clientId: 'short-lived', name: 'Short-lived', kind: 'service' }, by);
    issued.push(secret!);
    const removed = await clients.delete('short-lived', by);
    expect(removed).toMatchObject({ clientId: 'short-lived', source: 'database' });
    expect(deleted).toEqual(['short-lived']);
    expect(await clients.find('short-lived')).toBeNull();
    expect(await clients.findOidcMetadata('short-lived')).toBeUndefined();
    expect(await storedRow('short-lived')).toBeNull();
    expect((await failure(clients.delete('short-lived', by))).status).toBe(404);
    expect((await failure(clients.delete('not a valid id', by))).status).toBe(404);
  });

  it('records every change in the audit log, without secrets or their digests', async () => {
    const { rows } = await database.query<{ actor: string; action: string; subject: string; details: Record<string, unknown> }>(
      `SELECT actor, action, subject, details FROM audit_events WHERE subject LIKE 'client:%' ORDER BY id`,
    );
    const events = rows.map((r) => `${r.action} ${r.subject}`);
    expect(events).toEqual(
      expect.arrayContaining([
        'client.created client:ingest-worker',
        'client.created client:portal',
        'client.created client:nightly-export',
        'client.secret_rotated client:nightly-export',
        'client.created client:short-lived',
        'client.deleted client:short-lived',
      ]),
    );
    expect(events.filter((e) => e.includes('declared-'))).toEqual([]);
    expect(rows.every((r) => r.actor === 'test:operator')).toBe(true);
    expect(rows.find((r) => r.subject === 'client:ingest-worker')!.details).toEqual({
      name: 'Ingest worker',
      kind: 'service',
      scopes: ['read', 'deposit:write'],
      redirectUris: [],
      defaultResource: null,
      accessTokenTtlSeconds: 900,
    });
    const everything = JSON.stringify(rows);
    expect(issued.length).toBeGreaterThan(5);
    for (const secret of issued) {
      expect(everything).not.toContain(secret);
      expect(everything).not.toContain(digestClientSecret(secret));
    }
  });

  describe('tessera client (CLI commands)', () => {
    function run(args: string[]): Promise<string> {
      const lines: string[] = [];
      return clientCommand({ clients }, args, { out: (line) => lines.push(line) }).then(() => lines.join('\n'));
    }
    const secretIn = (output: string) => /client_secret: (tsr_cs_\w+)/.exec(output)?.[1];

    it('creates a confidential client and prints its secret once, with a warning', async () => {
      const output = await run(['create', '--kind', 'service', '--name', 'Harvester', '--id', 'harvester', '--scopes', 'read,deposit:write', '--access-token-ttl', '1200']);
      const secret = secretIn(output)!;
      issued.push(secret);
      expect(output).toMatch(/client_id: +harvester/);
      expect(secret).toMatch(CLIENT_SECRET_PATTERN);
      expect(output).toMatch(/cannot be shown again/);
      expect(secretMatches((await clients.findOidcMetadata('harvester'))!.client_secret!, secret)).toBe(true);
      expect(await clients.find('harvester')).toMatchObject({ scopes: ['read', 'deposit:write'], accessTokenTtlSeconds: 1200 });

      const shown = await run(['show', 'harvester']);
      expect(shown).toMatch(/kind: +service/);
      expect(shown).toMatch(/scopes: +read deposit:write/);
      expect(shown).not.toContain(secret);
      expect(shown).not.toContain(digestClientSecret(secret));
      expect(await run(['list'])).toMatch(/^harvester\tservice\tHarvester\tread,deposit:write\tdatabase\tclient_secret_basic$/m);
    });

    it('grants a service client introspection with --may-introspect, stored and shown; off by default', async () => {
      const output = await run(['create', '--kind', 'service', '--name', 'Deposit worker', '--id', 'deposit-worker', '--may-introspect']);
      issued.push(secretIn(output)!);
      expect(output).toMatch(/introspection: granted/);
      expect(await clients.find('deposit-worker')).toMatchObject({ kind: 'service', mayIntrospect: true });
      expect((await clients.findOidcMetadata('deposit-worker'))!.tessera_may_introspect).toBe(true);
      expect(await storedRow('deposit-worker')).toMatch(/"may_introspect":true/);
      expect(await run(['show', 'deposit-worker'])).toMatch(/^introspection: +granted$/m);

      const plain = await run(['create', '--kind', 'service', '--name', 'Plain worker', '--id', 'plain-worker']);
      issued.push(secretIn(plain)!);
      expect(await clients.find('plain-worker')).toMatchObject({ mayIntrospect: false });
      expect((await clients.findOidcMetadata('plain-worker'))!.tessera_may_introspect).toBeUndefined();
      expect(await run(['show', 'plain-worker'])).toMatch(/^introspection: +no$/m);
      await expect(run(['create', '--kind', 'device', '--name', 'Nosy CLI', '--may-introspect'])).rejects.toMatchObject({ status: 400 });
      // Changed later: on, shown, off again; the audit log records each change.
      expect(await run(['set-introspection', 'plain-worker', 'on'])).toMatch(/plain-worker may now call the introspection endpoint/);
      expect(await run(['show', 'plain-worker'])).toMatch(/^introspection: +granted$/m);
      expect(await run(['set-introspection', 'plain-worker', 'off'])).toMatch(/may no longer/);
      expect(await clients.find('plain-worker')).toMatchObject({ mayIntrospect: false });
      const { rows } = await database.query<{ details: { mayIntrospect: boolean } }>(
        "SELECT details FROM audit_events WHERE action = 'client.introspection_changed' AND subject = 'client:plain-worker' ORDER BY id",
      );
      expect(rows.map((row) => row.details.mayIntrospect)).toEqual([true, false]);
      await expect(run(['set-introspection', 'records-api', 'on'])).rejects.toMatchObject({ status: 409 });
      await expect(run(['set-introspection', 'declared-api', 'on'])).rejects.toMatchObject({ status: 409 });
      await expect(run(['set-introspection', 'plain-worker', 'yes'])).rejects.toBeInstanceOf(UsageError);
      // The table itself refuses the grant on any other kind.
      await expect(database.query("UPDATE clients SET may_introspect = true WHERE client_id = 'records-api'")).rejects.toThrow(/clients_may_introspect_by_kind/);
    });

    it('sets and removes a token-exchange policy (tessera client set-token-exchange), naming what does not fit', async () => {
      issued.push(secretIn(await run(['create', '--kind', 'service', '--name', 'Grid jobs', '--id', 'grid-jobs']))!);
      const policy = ['--subject-kinds', 'personal_access_token,access_token', '--audiences', 'urn:tessera:files', '--scopes', 'read'];
      expect(await run(['set-token-exchange', 'grid-jobs', ...policy])).toBe(
        'grid-jobs may now exchange personal_access_token, access_token for tokens for urn:tessera:files, with at most the scopes read.',
      );
      expect(await clients.find('grid-jobs')).toMatchObject({ tokenExchange: { subjectTokenKinds: ['personal_access_token', 'access_token'], audiences: ['urn:tessera:files'], scopes: ['read'] } });
      expect(await run(['show', 'grid-jobs'])).toMatch(/^token_exchange: +personal_access_token access_token → urn:tessera:files \(scopes read\)$/m);
      // Every field that does not fit is named in one answer.
      const wrong = await failure(run(['set-token-exchange', 'grid-jobs', '--subject-kinds', 'password', '--audiences', 'urn:elsewhere', '--scopes', 'read,admin']));
      expect([wrong.status, fields(wrong)]).toEqual([400, ['audiences.0', 'scopes.1', 'subjectTokenKinds.0']]);
      expect(wrong.errors!.find((e) => e.field === 'audiences.0')!.message).toMatch(/"urn:elsewhere" is not one of oauth.resources/);
      const extra = await failure(clients.setTokenExchange('grid-jobs', { subjectTokenKinds: ['session'], audiences: ['urn:tessera:files'], scopes: ['read'], maxLifetime: 60 }, by));
      expect([extra.status, fields(extra)]).toEqual([400, ['maxLifetime']]);
      expect(await clients.find('grid-jobs')).toMatchObject({ tokenExchange: { subjectTokenKinds: ['personal_access_token', 'access_token'] } });
      await expect(run(['set-token-exchange', 'declared-cli', ...policy])).rejects.toMatchObject({ status: 409 });
      await expect(run(['set-token-exchange', 'nobody', ...policy])).rejects.toMatchObject({ status: 404 });
      await expect(run(['set-token-exchange', 'grid-jobs', '--audiences', 'urn:tessera:files'])).rejects.toBeInstanceOf(UsageError);
      await expect(run(['set-token-exchange', 'grid-jobs', 'off', '--scopes', 'read'])).rejects.toBeInstanceOf(UsageError);
      expect(await run(['set-token-exchange', 'grid-jobs', 'off'])).toBe('grid-jobs may no longer exchange tokens.');
      expect(await clients.find('grid-jobs')).toMatchObject({ tokenExchange: null });
      const { rows } = await database.query<{ details: { tokenExchange: unknown } }>(
        "SELECT details FROM audit_events WHERE action = 'client.token_exchange_changed' AND subject = 'client:grid-jobs' ORDER BY id",
      );
      expect(rows.map((row) => row.details.tokenExchange === null)).toEqual([false, true]);
    });

    it('creates web and device clients from the command line', async () => {
      const web = await run(['create', '--kind', 'web', '--name', 'Viewer', '--id', 'viewer', '--redirect-uri', 'https://viewer.example.org/cb', '--redirect-uri', 'http://localhost:5173/cb', '--default-resource', 'urn:tessera:files']);
      issued.push(secretIn(web)!);
      expect(await clients.find('viewer')).toMatchObject({ redirectUris: ['https://viewer.example.org/cb', 'http://localhost:5173/cb'], defaultResource: 'urn:tessera:files' });
      const device = await run(['create', '--kind', 'device', '--name', 'Uploader']);
      expect(device).toMatch(/client_id: +device-\w{16}/);
      expect(device).not.toMatch(/client_secret/);
      expect(device).toMatch(/public client/);
    });

    it('rotates a secret and prints the new one once; deletes; shows declared clients', async () => {
      const rotatedOutput = await run(['rotate-secret', 'harvester']);
      const secret = secretIn(rotatedOutput)!;
      issued.push(secret);
      expect(rotatedOutput).toMatch(/previous secret no longer works/);
      expect(secretMatches((await clients.findOidcMetadata('harvester'))!.client_secret!, secret)).toBe(true);
      expect(await run(['show', 'harvester'])).not.toContain(secret);

      expect(await run(['delete', 'harvester'])).toMatch(/Deleted the service client harvester/);
      await expect(run(['show', 'harvester'])).rejects.toMatchObject({ status: 404 });

      const declared = await run(['show', 'declared-api']);
      expect(declared).toMatch(/source: +configuration/);
      expect(declared).not.toContain(DECLARED[1]!.secretSha256!);
      await expect(run(['delete', 'declared-api'])).rejects.toMatchObject({ status: 409 });
    });

    it('answers wrong usage with a UsageError', async () => {
      await expect(run(['create', '--name', 'No kind'])).rejects.toBeInstanceOf(UsageError);
      await expect(run(['create', '--kind', 'service', '--name', 'X', '--access-token-ttl', 'soon'])).rejects.toBeInstanceOf(UsageError);
      await expect(run(['show'])).rejects.toBeInstanceOf(UsageError);
      await expect(run(['frobnicate'])).rejects.toBeInstanceOf(UsageError);
      await expect(run(['create', '--kind', 'service', '--name', 'X', '--bogus'])).rejects.toMatchObject({ code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
    });
  });

  it('keeps no secret anywhere in the clients table', async () => {
    const { rows } = await database.query<{ all: string }>('SELECT coalesce(json_agg(c)::text, \'\') AS all FROM clients c');
    for (const secret of issued) expect(rows[0]!.all).not.toContain(secret);
  });
});
