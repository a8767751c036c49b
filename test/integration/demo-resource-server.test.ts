import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { createDemoRepository } from '../../src/demo/resource-server.ts';
import { createTesseraVerifier, type TesseraVerifier } from '@tessera/verifier';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

// The demo repository API (src/demo) behind @tessera/verifier, against a real Tessera: the scope
// matrix of deposits and records, and its answers in Tessera's JSON error shape.

const by = { actor: 'test' };

describe('demo repository API', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let verifier: TesseraVerifier;
  let demo: Server;
  let base: string;
  /** A credential per role: a personal token, a session and an OAuth access token. */
  const as: Record<'reader' | 'writer' | 'publisher' | 'service', Record<string, string>> = { reader: {}, writer: {}, publisher: {}, service: {} };

  beforeAll(async () => {
    db = await createTestDatabase();
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    tessera = await startTestTessera({ PORT: String(port), ISSUER: issuer, DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix });
    const { secret } = await tessera.core.clients.create({ clientId: 'demo-repository', name: 'Demo repository', kind: 'resource_server', scopes: ['read'] }, by);

    await tessera.core.accounts.createUser({ username: 'reader', password: 'reader-password', scopes: ['read'] }, by);
    await tessera.core.accounts.createUser({ username: 'writer', password: 'writer-password', scopes: ['read', 'deposit:write'] }, by);
    await tessera.core.accounts.createUser({ username: 'publisher', password: 'publisher-password', scopes: ['read', 'deposit:write', 'deposit:actions'] }, by);
    const reader = (await tessera.core.accounts.findUser('reader'))!;
    const writer = (await tessera.core.accounts.findUser('writer'))!;
    as.reader = { authorization: `Bearer ${(await tessera.core.personalTokens.create(reader, { name: 'demo', scopes: ['read'] }, by)).token}` };
    as.writer = { 'x-api-user': 'writer', 'x-api-key': (await tessera.core.personalTokens.create(writer, { name: 'demo', scopes: ['read', 'deposit:write'] }, by)).token };
    const login = await fetch(`${issuer}/users/publisher/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'publisher-password' }) });
    as.publisher = { 'x-session': ((await login.json()) as { session: string }).session };
    const service = await tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by);
    const config = await oidc.discovery(new URL(issuer), 'harvester', undefined, oidc.ClientSecretBasic(service.secret!), { execute: [oidc.allowInsecureRequests] });
    as.service = { authorization: `Bearer ${(await oidc.clientCredentialsGrant(config)).access_token}` };

    verifier = createTesseraVerifier({ issuer, clientId: 'demo-repository', clientSecret: secret! });
    demo = createDemoRepository({ verifier, clock: () => Date.parse('2026-03-01T12:00:00Z') }).listen(0, '127.0.0.1');
    await new Promise((resolve) => demo.once('listening', resolve));
    base = `http://127.0.0.1:${(demo.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    verifier?.close();
    await new Promise((resolve) => demo?.close(resolve));
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  async function api(method: string, path: string, headers: Record<string, string>, body?: unknown) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  }

  const insufficient = (scope: string) => ({
    status: 403,
    body: { message: `This requires the scope ${scope}.`, status: 403 },
  });

  it('lets `read` list and read, and nothing more', async () => {
    expect(await api('GET', '/api/records', as.reader)).toMatchObject({ status: 200, body: { records: [] } });
    expect(await api('GET', '/api/deposits', as.reader)).toMatchObject({ status: 200, body: { deposits: [] } });
    expect(await api('GET', '/api/records', as.service)).toMatchObject({ status: 200 });
    const create = await api('POST', '/api/deposits', as.reader, { title: 'Not allowed' });
    expect(create).toMatchObject(insufficient('deposit:write'));
    expect(create.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="insufficient_scope", scope="deposit:write"');
    expect(await api('POST', '/api/deposits', as.service, { title: 'Not allowed' })).toMatchObject(insufficient('deposit:write'));
    expect(await api('PUT', '/api/deposits/1', as.reader, { title: 'Not allowed' })).toMatchObject(insufficient('deposit:write'));
    const publish = await api('POST', '/api/deposits/1/actions/publish', as.reader);
    expect(publish).toMatchObject(insufficient('deposit:actions'));
    expect(publish.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="insufficient_scope", scope="deposit:actions"');
  });

  it('lets `deposit:write` create and update a deposit, but not publish it', async () => {
    const created = await api('POST', '/api/deposits', as.writer, { title: 'Ocean salinity 2025', creators: ['Doe, Jane'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ title: 'Ocean salinity 2025', description: '', creators: ['Doe, Jane'], owner: { username: 'writer' }, created: '2026-03-01T12:00:00.000Z' });
    const id = String(created.body.id);
    expect(created.headers.get('location')).toBe(`/api/deposits/${id}`);

    const updated = await api('PUT', `/api/deposits/${id}`, as.writer, { title: 'Ocean salinity 2025 (corrected)', description: 'CTD casts', creators: ['Doe, Jane', 'Roe, Rick'] });
    expect(updated).toMatchObject({ status: 200, body: { id, title: 'Ocean salinity 2025 (corrected)', description: 'CTD casts', creators: ['Doe, Jane', 'Roe, Rick'] } });
    expect(await api('GET', `/api/deposits/${id}`, as.writer)).toMatchObject({ status: 200, body: { title: 'Ocean salinity 2025 (corrected)' } });
    expect(await api('GET', '/api/deposits', as.writer)).toMatchObject({ status: 200, body: { deposits: [{ id }] } });

    expect(await api('POST', `/api/deposits/${id}/actions/publish`, as.writer)).toMatchObject(insufficient('deposit:actions'));
    // Deposits are their owner's: another user does not see them.
    expect(await api('GET', `/api/deposits/${id}`, as.reader)).toMatchObject({ status: 404, body: { message: `No deposit ${id}.`, status: 404 } });
    expect(await api('GET', '/api/deposits', as.reader)).toMatchObject({ body: { deposits: [] } });
    expect(await api('GET', '/api/records', as.reader)).toMatchObject({ body: { records: [] } });
  });

  it('lets `deposit:actions` publish: the deposit becomes a record everyone with `read` sees', async () => {
    const created = await api('POST', '/api/deposits', as.publisher, { title: 'Glacier outlines', description: 'Shapefiles, 1990–2020', creators: ['Svensson, Ada'] });
    expect(created.status).toBe(201);
    const id = String(created.body.id);
    const published = await api('POST', `/api/deposits/${id}/actions/publish`, as.publisher);
    expect(published).toMatchObject({ status: 201, body: { id, title: 'Glacier outlines', owner: { username: 'publisher' }, published: '2026-03-01T12:00:00.000Z' } });
    expect(published.headers.get('location')).toBe(`/api/records/${id}`);

    expect(await api('GET', `/api/deposits/${id}`, as.publisher)).toMatchObject({ status: 404 });
    expect(await api('POST', `/api/deposits/${id}/actions/publish`, as.publisher)).toMatchObject({ status: 404 });
    expect(await api('GET', `/api/records/${id}`, as.reader)).toMatchObject({ status: 200, body: { id, title: 'Glacier outlines' } });
    expect(await api('GET', '/api/records', as.service)).toMatchObject({ status: 200, body: { records: [{ id }] } });
    // Someone else's deposit cannot be published, even with the scope.
    const writers = await api('POST', '/api/deposits', as.writer, { title: 'Mine' });
    expect(await api('POST', `/api/deposits/${String(writers.body.id)}/actions/publish`, as.publisher)).toMatchObject({ status: 404 });
  });

  it('answers 401 without a valid credential, in Tessera\'s error shape', async () => {
    const none = await api('GET', '/api/records', {});
    expect(none).toMatchObject({ status: 401, body: { message: 'Authentication required.', status: 401 } });
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="tessera"');
    const bad = await api('POST', '/api/deposits', { authorization: 'Bearer tsr_pat_nonsense' }, { title: 'x' });
    expect(bad).toMatchObject({ status: 401, body: { message: 'The credential is invalid, expired or revoked.', status: 401 } });
    expect(bad.headers.get('www-authenticate')).toBe('Bearer realm="tessera", error="invalid_token"');
  });

  it('validates bodies and answers 400, 404 and 415 in Tessera\'s error shape', async () => {
    expect(await api('POST', '/api/deposits', as.writer, { title: '  ', creators: 'Doe' })).toEqual({
      status: 400,
      headers: expect.anything(),
      body: {
        message: 'Validation error.',
        status: 400,
        errors: [
          { field: 'title', code: 'too_small', message: expect.any(String) },
          { field: 'creators', code: 'invalid_type', message: expect.any(String) },
        ],
      },
    });
    expect(await api('POST', '/api/deposits', as.writer, { title: 'ok', doi: '10.1234/x' })).toMatchObject({ status: 400, body: { errors: [{ code: 'unrecognized_keys' }] } });
    expect(await api('POST', '/api/deposits', as.writer, '{"title":')).toEqual({ status: 400, headers: expect.anything(), body: { message: 'Request body is not valid JSON.', status: 400 } });
    const form = await fetch(`${base}/api/deposits`, { method: 'POST', headers: { ...as.writer, 'content-type': 'application/x-www-form-urlencoded' }, body: 'title=x' });
    expect(form.status).toBe(415);
    expect(await form.json()).toEqual({ message: 'This endpoint accepts only application/json.', status: 415 });
    expect(await api('GET', '/api/records/999', as.reader)).toEqual({ status: 404, headers: expect.anything(), body: { message: 'No record 999.', status: 404 } });
    expect(await api('PUT', '/api/deposits/999', as.writer, { title: 'x' })).toMatchObject({ status: 404, body: { message: 'No deposit 999.' } });
    expect(await api('GET', '/api/nothing', as.reader)).toEqual({ status: 404, headers: expect.anything(), body: { message: 'No route for GET /api/nothing.', status: 404 } });
  });
});
