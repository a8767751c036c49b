import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config/load.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { basic, FORM } from '../support/token-requests.ts';
import { promtoolCheck, sample, sumOf } from '../support/prometheus-text.ts';

// Prometheus metrics on a listener of their own (TESSERA_METRICS_PORT), checked by Prometheus's
// own promtool (Debian's prometheus package) and read as Prometheus would.

const by = { actor: 'test' };

describe('Prometheus metrics', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let metricsUrl: string;
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    db = await createTestDatabase();
    tessera = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_METRICS_PORT: '0' });
    metricsUrl = `${tessera.metricsUrl!}/metrics`;
    secrets.rs = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    secrets.harvester = (await tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  const scrape = async () => {
    const res = await fetch(metricsUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return res.text();
  };

  it('listens on loopback, on a port of its own; the public port serves no metrics', async () => {
    expect(new URL(metricsUrl).hostname).toBe('127.0.0.1');
    expect(new URL(metricsUrl).port).not.toBe(new URL(tessera.url).port);
    expect((await fetch(`${tessera.url}/metrics`)).status).toBe(404);
    expect((await fetch(new URL('/', metricsUrl))).status).toBe(404);
    expect((await fetch(metricsUrl, { method: 'POST' })).status).toBe(405);
  });

  it('counts requests by route pattern, method and status, and times them; promtool finds nothing wrong', async () => {
    const token = await fetch(`${tessera.url}/oauth/token`, { method: 'POST', headers: { ...FORM, authorization: basic('harvester', secrets.harvester!) }, body: 'grant_type=client_credentials&scope=read' });
    const accessToken = String(((await token.json()) as { access_token: string }).access_token);
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${tessera.url}/oauth/introspect`, { method: 'POST', headers: { ...FORM, authorization: basic('records-api', secrets.rs!) }, body: new URLSearchParams({ token: accessToken }) });
      expect(((await res.json()) as { active: boolean }).active).toBe(true);
    }
    await (await fetch(`${tessera.url}/healthz`)).text();
    await (await fetch(`${tessera.url}/api/v1/tokens/some-token-id`, { method: 'DELETE' })).text();
    await (await fetch(`${tessera.url}/no/such/path/with-a-secret-looking-segment`)).text();

    const text = await scrape();
    const checked = await promtoolCheck(text);
    expect(checked).toEqual({ code: 0, output: '' });

    expect(sample(text, 'tessera_http_requests_total', { route: '/oauth/token', method: 'POST', status: '200' })).toBe(1);
    expect(sample(text, 'tessera_http_requests_total', { route: '/oauth/introspect', method: 'POST', status: '200' })).toBe(3);
    expect(sample(text, 'tessera_http_requests_total', { route: '/healthz', method: 'GET', status: '200' })).toBe(1);
    // A route with a parameter is counted under its pattern, an unknown path under one label.
    expect(sample(text, 'tessera_http_requests_total', { route: '/api/v1/tokens/:id', method: 'DELETE', status: '401' })).toBe(1);
    expect(sample(text, 'tessera_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain('some-token-id');
    expect(text).not.toContain('with-a-secret-looking-segment');
    expect(text).not.toContain(accessToken);
    expect(sample(text, 'tessera_http_request_duration_seconds_count', { route: '/oauth/introspect', method: 'POST' })).toBe(3);
    expect(sample(text, 'tessera_http_request_duration_seconds_bucket', { route: '/oauth/introspect', method: 'POST', le: '+Inf' })).toBe(3);
    // The introspection cache: the first check went to the stores, the next two were answered from memory.
    expect(sample(text, 'tessera_introspection_cache_hits_total', {})).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'tessera_introspection_cache_entries', {})).toBeGreaterThanOrEqual(1);
    // Introspection answers by outcome, and the token issued (client credentials, not an access token).
    expect(sample(text, 'tessera_introspection_answers_total', { answer: 'active', kind: 'access_token' })).toBe(3);
    expect(sample(text, 'tessera_oauth_tokens_issued_total', { kind: 'client_credentials' })).toBe(1);
    expect(sample(text, 'tessera_password_hashing_queued', {})).toBe(0);
    // Node's own figures, the event-loop lag among them.
    expect(sample(text, 'nodejs_eventloop_lag_seconds', {})).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'process_cpu_seconds_total', {})).toBeGreaterThan(0);
  });
});

describe('Prometheus metrics of sign-ins', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;

  beforeAll(async () => {
    db = await createTestDatabase();
    tessera = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, TESSERA_METRICS_PORT: '0', TESSERA_LOGIN_FAILURES_PER_USERNAME: '2' });
    await tessera.core.accounts.createUser({ username: 'dana', password: 'dana-password', scopes: ['read'] }, by);
  });
  afterAll(async () => {
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it('counts password sign-ins by channel and outcome, a lockout as limited', async () => {
    const login = async (password: string) => {
      const res = await fetch(`${tessera.url}/users/dana/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password }) });
      await res.body?.cancel();
      return res.status;
    };
    expect(await login('dana-password')).toBe(200);
    expect(await login('wrong 1')).toBe(401);
    expect(await login('wrong 2')).toBe(401);
    expect(await login('dana-password')).toBe(429);
    const text = await (await fetch(`${tessera.metricsUrl!}/metrics`)).text();
    expect(sample(text, 'tessera_sign_ins_total', { channel: 'api', outcome: 'signed_in' })).toBe(1);
    expect(sample(text, 'tessera_sign_ins_total', { channel: 'api', outcome: 'failed' })).toBe(2);
    expect(sample(text, 'tessera_sign_ins_total', { channel: 'api', outcome: 'limited' })).toBe(1);
    expect(text).not.toContain('dana');
    expect(await promtoolCheck(text)).toEqual({ code: 0, output: '' });
  });
});

describe('Prometheus metrics of revocations, invalidations and the stores', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let other: TestTessera;
  let rs: string;
  let harvester: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix };
    tessera = await startTestTessera({ ...env, TESSERA_METRICS_PORT: '0' });
    other = await startTestTessera(env);
    await tessera.core.accounts.createUser({ username: 'erin', password: 'erin-password', scopes: ['read'] }, by);
    rs = (await tessera.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
    harvester = (await tessera.core.clients.create({ clientId: 'harvester', name: 'Harvester', kind: 'service', scopes: ['read'] }, by)).secret!;
  });
  afterAll(async () => {
    await Promise.all([tessera?.stop(), other?.stop()]);
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  const scrape = async () => (await fetch(`${tessera.metricsUrl!}/metrics`)).text();

  it('counts credentials ended before their time by kind, and times the invalidations that arrive from other nodes', async () => {
    const before = await scrape();
    const lagBefore = sample(before, 'tessera_invalidation_lag_seconds_count', {}) ?? 0;
    // A session ended by logout, a personal token revoked, a client-credentials token revoked (RFC 7009).
    const login = await fetch(`${tessera.url}/users/erin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'erin-password' }) });
    const session = String(((await login.json()) as { session: string }).session);
    const created = await fetch(`${tessera.url}/api/v1/tokens`, { method: 'POST', headers: { 'x-session': session, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'to revoke' }) });
    const { id } = (await created.json()) as { id: string };
    expect((await fetch(`${tessera.url}/api/v1/tokens/${id}`, { method: 'DELETE', headers: { 'x-session': session } })).status).toBe(204);
    expect((await fetch(`${tessera.url}/logout`, { method: 'POST', headers: { 'x-session': session } })).status).toBe(204);
    const issued = await fetch(`${tessera.url}/oauth/token`, { method: 'POST', headers: { ...FORM, authorization: basic('harvester', harvester) }, body: 'grant_type=client_credentials&scope=read' });
    const token = String(((await issued.json()) as { access_token: string }).access_token);
    expect((await fetch(`${tessera.url}/oauth/revoke`, { method: 'POST', headers: { ...FORM, authorization: basic('harvester', harvester) }, body: new URLSearchParams({ token }) })).status).toBe(200);
    const introspected = await fetch(`${tessera.url}/oauth/introspect`, { method: 'POST', headers: { ...FORM, authorization: basic('records-api', rs) }, body: new URLSearchParams({ token }) });
    expect(await introspected.json()).toEqual({ active: false });
    // Another node ends a session: its invalidation reaches this one through Redis.
    const elsewhere = await fetch(`${other.url}/users/erin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'erin-password' }) });
    const otherSession = String(((await elsewhere.json()) as { session: string }).session);
    expect((await fetch(`${other.url}/logout`, { method: 'POST', headers: { 'x-session': otherSession } })).status).toBe(204);

    let text = await scrape();
    // Invalidations arrive asynchronously: wait (generously) for the other node's to be timed.
    for (let i = 0; i < 100 && (sample(text, 'tessera_invalidation_lag_seconds_count', {}) ?? 0) < lagBefore + 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      text = await scrape();
    }
    expect(sample(text, 'tessera_credentials_revoked_total', { kind: 'session' })).toBe(1);
    expect(sample(text, 'tessera_credentials_revoked_total', { kind: 'personal_access_token' })).toBe(1);
    expect(sample(text, 'tessera_credentials_revoked_total', { kind: 'client_credentials' })).toBe(1);
    expect(sample(text, 'tessera_invalidation_lag_seconds_count', {})).toBeGreaterThanOrEqual(lagBefore + 4);
    expect(sample(text, 'tessera_invalidation_lag_seconds_bucket', { le: '5' })).toBe(sample(text, 'tessera_invalidation_lag_seconds_count', {}));
    expect(await promtoolCheck(text)).toEqual({ code: 0, output: '' });
  });

  it('times the commands to Redis and PostgreSQL by operation, and counts none as failed while both answer', async () => {
    const text = await scrape();
    expect(sample(text, 'tessera_store_command_duration_seconds_count', { store: 'redis', operation: 'GET' })).toBeGreaterThan(0);
    expect(sample(text, 'tessera_store_command_duration_seconds_count', { store: 'postgres', operation: 'query' })).toBeGreaterThan(0);
    expect(sumOf(text, 'tessera_store_errors_total', {})).toBe(0);
    // Operations are fixed names: no key, no SQL.
    for (const line of text.split('\n').filter((l) => l.startsWith('tessera_store_command_duration_seconds_count'))) {
      expect(line).toMatch(/operation="[A-Za-z_]+"/);
    }
  });
});

describe('the metrics settings', () => {
  it('are off by default, on loopback once a port is given, and refuse the public port', () => {
    expect(loadConfig({ env: {} }).metrics).toEqual({ port: null, host: '127.0.0.1' });
    expect(loadConfig({ env: { TESSERA_METRICS_PORT: '9464' } }).metrics).toEqual({ port: 9464, host: '127.0.0.1' });
    expect(() => loadConfig({ env: { PORT: '8080', TESSERA_METRICS_PORT: '8080' } })).toThrow(/metrics\.port.*public port/);
    expect(() => loadConfig({ env: { TESSERA_METRICS_PORT: 'x' } })).toThrow(/TESSERA_METRICS_PORT|metrics/);
  });
});
