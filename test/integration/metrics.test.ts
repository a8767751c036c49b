import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { loadConfig } from '../../src/config/load.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { basic, FORM } from '../support/token-requests.ts';

// Prometheus metrics on a listener of their own (TESSERA_METRICS_PORT), checked by Prometheus's
// own promtool (Debian's prometheus package) and read as Prometheus would.

const by = { actor: 'test' };

/** `promtool check metrics` on the text: its exit code and what it said. */
function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

/** The value of the sample with exactly these labels, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = (match[2] ?? '').split(',').filter(Boolean);
    if (present.length === wanted.length && wanted.every((pair) => present.includes(pair))) return Number(match[3]);
  }
  return undefined;
}

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

describe('the metrics settings', () => {
  it('are off by default, on loopback once a port is given, and refuse the public port', () => {
    expect(loadConfig({ env: {} }).metrics).toEqual({ port: null, host: '127.0.0.1' });
    expect(loadConfig({ env: { TESSERA_METRICS_PORT: '9464' } }).metrics).toEqual({ port: 9464, host: '127.0.0.1' });
    expect(() => loadConfig({ env: { PORT: '8080', TESSERA_METRICS_PORT: '8080' } })).toThrow(/metrics\.port.*public port/);
    expect(() => loadConfig({ env: { TESSERA_METRICS_PORT: 'x' } })).toThrow(/TESSERA_METRICS_PORT|metrics/);
  });
});
