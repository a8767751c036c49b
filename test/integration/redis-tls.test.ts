import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, killRedisServer, startRedisServer, type ServerTls } from '../support/private-redis.ts';
import { createTestDatabase, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { createTestCa, type CertificateFiles, type TestCa } from '../support/test-certificates.ts';
import { basic, FORM } from '../support/token-requests.ts';

// Tessera on Redis over TLS: redis-servers of this file's own that speak TLS only, with
// certificates from a CA of its own (and a second CA that signed nothing of theirs).

const by = { actor: 'test' };
const REDIS_PASSWORD = 'redis-tls-s3cret-password';

interface TlsRedis {
  port: number;
  process: ChildProcess;
  /** The name of its certificate, when not 127.0.0.1. */
  serverName?: string;
}

describe('Redis over TLS', () => {
  let dir: string;
  let ca: TestCa;
  let otherCa: TestCa;
  let client: CertificateFiles;
  let db: TestDatabase;
  const servers: TlsRedis[] = [];
  /** Without client certificates, with a password; asking for client certificates; a certificate for redis.test only. */
  let open: TlsRedis;
  let mutual: TlsRedis;
  let named: TlsRedis;
  const running: TestTessera[] = [];

  async function startServer(certificate: CertificateFiles, authClients: boolean, extraArgs: string[] = [], serverName?: string): Promise<TlsRedis> {
    const port = await freePort();
    const tls: ServerTls = { ...certificate, caFile: ca.certFile, authClients };
    const server = { port, process: await startRedisServer(port, extraArgs, tls), ...(serverName ? { serverName } : {}) };
    servers.push(server);
    return server;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-redis-tls-'));
    ca = await createTestCa(dir);
    otherCa = await createTestCa(dir, 'other-ca');
    client = await ca.issue('tessera-client');
    const loopback = await ca.issue('redis-loopback', 'IP:127.0.0.1');
    open = await startServer(loopback, false, ['--requirepass', REDIS_PASSWORD]);
    mutual = await startServer(loopback, true);
    named = await startServer(await ca.issue('redis-named', 'DNS:redis.test'), false, [], 'redis.test');
    db = await createTestDatabase();
  }, 60_000);
  afterAll(async () => {
    await Promise.all(running.map((tessera) => tessera.stop()));
    await Promise.all(servers.map((server) => killRedisServer(server.process)));
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(env: Record<string, string>): Promise<TestTessera> {
    const tessera = await startTestTessera({ DATABASE_URL: db.url, TESSERA_REDIS_PREFIX: uniqueRedisPrefix(), ...env });
    running.push(tessera);
    return tessera;
  }

  /** A raw client of the test's own on a TLS server, with every credential. */
  async function rawClient(server: TlsRedis, password?: string): Promise<Redis> {
    const tls = { ca: await readFile(ca.certFile), cert: await readFile(client.certFile), key: await readFile(client.keyFile), ...(server.serverName ? { servername: server.serverName } : {}) };
    const raw = new Redis({ host: '127.0.0.1', port: server.port, tls, ...(password ? { password } : {}), lazyConnect: true, maxRetriesPerRequest: 0 });
    await raw.connect();
    return raw;
  }

  let serial = 0;
  /** A password login and an introspection of its session on `tessera`; the session's keys are in `server`. */
  async function loginAndIntrospect(tessera: TestTessera, server: TlsRedis, password?: string): Promise<void> {
    const n = ++serial;
    await tessera.core.accounts.createUser({ username: `reader-${n}`, password: 'reader-password', scopes: ['read'] }, by);
    const rsSecret = (await tessera.core.clients.create({ clientId: `records-api-${n}`, name: 'Records API', kind: 'resource_server' }, by)).secret!;
    const login = await fetch(`${tessera.url}/users/reader-${n}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'reader-password' }) });
    expect(login.status).toBe(200);
    const session = String(((await login.json()) as { session: string }).session);
    const introspection = await fetch(`${tessera.url}/oauth/introspect`, { method: 'POST', headers: { ...FORM, authorization: basic(`records-api-${n}`, rsSecret) }, body: new URLSearchParams({ token: session }) });
    expect(introspection.status).toBe(200);
    expect(await introspection.json()).toMatchObject({ active: true, username: `reader-${n}` });
    // The state is in the TLS server, not in memory.
    expect(tessera.ephemeral.kind).toBe('redis');
    const raw = await rawClient(server, password);
    try {
      expect((await raw.keys(`${tessera.config.redis.keyPrefix}*`)).length).toBeGreaterThan(0);
    } finally {
      raw.disconnect();
    }
  }

  it('serves a login and an introspection on a rediss:// URL, trusting the CA of REDIS_TLS_CA_FILE', async () => {
    const tessera = await start({ REDIS_URL: `rediss://:${REDIS_PASSWORD}@127.0.0.1:${open.port}`, REDIS_TLS_CA_FILE: ca.certFile });
    await loginAndIntrospect(tessera, open, REDIS_PASSWORD);
    expect(tessera.logs.text).not.toContain(REDIS_PASSWORD);
  }, 30_000);

  it('refuses to start, saying why, when the server asks for a client certificate and none is given; works with one', async () => {
    const env = { REDIS_URL: `redis://127.0.0.1:${mutual.port}`, REDIS_TLS: 'true', REDIS_TLS_CA_FILE: ca.certFile };
    await expect(start(env)).rejects.toThrow(new RegExp(`^cannot reach Redis at 127\\.0\\.0\\.1:${mutual.port}: .*client certificate`));
    const tessera = await start({ ...env, REDIS_TLS_CERT_FILE: client.certFile, REDIS_TLS_KEY_FILE: client.keyFile });
    await loginAndIntrospect(tessera, mutual);
  }, 30_000);

  it('refuses to start when the server\'s certificate is not signed by a trusted CA, saying so, without the password', async () => {
    const url = `rediss://:${REDIS_PASSWORD}@127.0.0.1:${open.port}`;
    const tries: Record<string, string>[] = [{ REDIS_URL: url, REDIS_TLS_CA_FILE: otherCa.certFile }, { REDIS_URL: url }];
    for (const env of tries) {
      const failure = await start(env).then(
        () => new Error('Tessera started'),
        (error: unknown) => error as Error,
      );
      expect(failure.message).toMatch(new RegExp(`^cannot reach Redis at 127\\.0\\.0\\.1:${open.port}: the server's TLS certificate could not be verified against the trusted CAs \\(`));
      expect(failure.message).not.toContain(REDIS_PASSWORD);
    }
  }, 30_000);

  it('checks the certificate against REDIS_TLS_SERVERNAME instead of the address dialled', async () => {
    const env = { REDIS_URL: `rediss://127.0.0.1:${named.port}`, REDIS_TLS_CA_FILE: ca.certFile };
    await expect(start(env)).rejects.toThrow(/the server's TLS certificate is not for the name checked \(.*127\.0\.0\.1/);
    const tessera = await start({ ...env, REDIS_TLS_SERVERNAME: 'redis.test' });
    await loginAndIntrospect(tessera, named);
  }, 30_000);
});
