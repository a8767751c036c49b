import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../support/private-redis.ts';
import { NGINX, startPrivateNginx } from '../support/private-nginx.ts';
import { recordConfigSecrets } from '../support/secret-ledger.ts';
import { startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { createTestCa } from '../support/test-certificates.ts';

// The deployment of compose.yaml without Docker: Debian's nginx with deploy/nginx/tessera.conf
// (only its addresses and certificate paths replaced) terminating TLS with a certificate from a
// test CA, in front of two `node src/main.ts` processes configured with
// config/production.example.json and their secrets in files, on one PostgreSQL database and one
// Redis prefix. The nodes trust X-Forwarded-* from nginx's address only: requests through nginx
// come from 127.0.0.1, and the test's own clients from other loopback addresses.

const EXAMPLE = resolve('config/production.example.json');
/** The address the test's client connects to nginx from, and the one it connects straight to a node from. */
const CLIENT_ADDRESS = '127.0.0.5';
const STRANGER_ADDRESS = '127.0.0.2';
/** What a client claims to be in X-Forwarded-For; no node may believe it. */
const SPOOFED_ADDRESS = '198.51.100.7';
const ADMIN_PASSWORD = `admin-${randomBytes(12).toString('base64url')}`;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Call {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  localAddress?: string;
}

/** The deployed nginx configuration with `replacements`, failing loudly when one no longer applies. */
async function deployedNginxConf(replacements: [string, string][]): Promise<string> {
  let conf = await readFile(resolve('deploy/nginx/tessera.conf'), 'utf8');
  for (const [from, to] of replacements) {
    if (!conf.includes(from)) throw new Error(`deploy/nginx/tessera.conf no longer contains "${from}": update this test with it`);
    conf = conf.replaceAll(from, to);
  }
  return conf;
}

describe('two Tessera nodes behind nginx with deploy/nginx/tessera.conf, configured with the production example', () => {
  const prefix = uniqueRedisPrefix();
  let dir: string;
  let db: TestDatabase;
  let nginx: ChildProcess | undefined;
  let nginxLog = '';
  let ca: string;
  let httpsPort: number;
  let httpPort: number;
  let issuer: string;
  const nodes: ServerProcess[] = [];

  function onNginx(path: string, call: Call = {}): Promise<Answer> {
    return send(httpsRequest, `${issuer}${path}`, { ...call, localAddress: call.localAddress ?? CLIENT_ADDRESS }, ca);
  }

  function send(requester: typeof httpRequest | typeof httpsRequest, url: string, call: Call, trusted?: string): Promise<Answer> {
    return new Promise((resolveAnswer, reject) => {
      const req = requester(url, { method: call.method ?? 'GET', headers: call.headers, localAddress: call.localAddress, ...(trusted ? { ca: trusted } : {}), agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolveAnswer({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end(call.body);
    });
  }

  /** The request log lines of every node, by node, for the request with this id. */
  function requestLines(requestId: string): { node: number; line: Record<string, unknown> }[] {
    return nodes.flatMap((node, index) =>
      node
        .stdout()
        .split('\n')
        .filter((text) => text.includes(`"reqId":"${requestId}"`))
        .map((text) => ({ node: index, line: JSON.parse(text) as Record<string, unknown> }))
        // The one line each request ends with (request-context.ts): its status, path and address.
        .filter(({ line }) => 'status' in line && 'url' in line),
    );
  }

  /** Waits until a request's log line is written (a line follows its answer by a moment). */
  async function requestLine(requestId: string): Promise<{ node: number; line: Record<string, unknown> }> {
    for (let waited = 0; waited < 10_000; waited += 20) {
      const [found] = requestLines(requestId);
      if (found) return found;
      await new Promise((resolveWait) => setTimeout(resolveWait, 20));
    }
    throw new Error(`no node logged request ${requestId}`);
  }

  beforeAll(async () => {
    if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: this test runs Debian's nginx. Install it with apt-get install -y nginx-light (.ci/run does).`);
    dir = await mkdtemp(join(tmpdir(), 'tessera-deployment-'));
    const testCa = await createTestCa(dir);
    const server = await testCa.issue('tessera', 'IP:127.0.0.1');
    ca = await readFile(testCa.certFile, 'utf8');
    [httpsPort, httpPort] = [await freePort(), await freePort()];
    issuer = `https://127.0.0.1:${httpsPort}`;
    const nodePorts = [await freePort(), await freePort()];

    const conf = await deployedNginxConf([
      ['server tessera-a:8080;', `server 127.0.0.1:${nodePorts[0]};`],
      ['server tessera-b:8080;', `server 127.0.0.1:${nodePorts[1]};`],
      ['listen 80;', `listen 127.0.0.1:${httpPort};`],
      ['listen 443 ssl;', `listen 127.0.0.1:${httpsPort} ssl;`],
      ['/etc/nginx/tls/tessera.pem', server.certFile],
      ['/etc/nginx/tls/tessera-key.pem', server.keyFile],
    ]);
    nginx = await startPrivateNginx(dir, conf, (text) => (nginxLog += text));

    // The secrets in files, as compose.yaml gives them; REDIS_URL and the prefix stay variables.
    db = await createTestDatabase();
    const secrets = {
      'database-url': db.url,
      'key-secret': randomBytes(32).toString('base64url'),
      'cookie-keys': `${randomBytes(32).toString('base64url')}\n${randomBytes(32).toString('base64url')}`,
      'admin-password': ADMIN_PASSWORD,
    };
    // The secret ledger learns them as if they were variables (a URL's password only), since the
    // nodes' environment names files.
    recordConfigSecrets({
      DATABASE_URL: secrets['database-url'],
      TESSERA_KEY_SECRET: secrets['key-secret'],
      TESSERA_COOKIE_KEYS: secrets['cookie-keys'].replace('\n', ','),
      TESSERA_ADMIN_PASSWORD: secrets['admin-password'],
    });
    for (const [name, value] of Object.entries(secrets)) await writeFile(join(dir, name), `${value}\n`, { mode: 0o600 });
    const env = {
      TESSERA_CONFIG: EXAMPLE,
      ISSUER: issuer,
      // nginx connects to the nodes from 127.0.0.1: the example's proxy address, for this host.
      TESSERA_TRUST_PROXY: '127.0.0.1',
      // Two nodes on one host: one process each, and metrics on ports of their own.
      TESSERA_WORKERS: '1',
      TESSERA_METRICS_PORT: '0',
      DATABASE_URL_FILE: join(dir, 'database-url'),
      TESSERA_KEY_SECRET_FILE: join(dir, 'key-secret'),
      TESSERA_COOKIE_KEYS_FILE: join(dir, 'cookie-keys'),
      TESSERA_ADMIN_PASSWORD_FILE: join(dir, 'admin-password'),
      REDIS_URL: TEST_REDIS_URL,
      TESSERA_REDIS_PREFIX: prefix,
      // The nodes' start-up check of the issuer goes through nginx, whose certificate this CA signed.
      NODE_EXTRA_CA_CERTS: testCa.certFile,
    };
    // The first node migrates the database alone, then the second starts.
    nodes.push(await startServerProcess({ ...env, PORT: String(nodePorts[0]) }, { timeoutMs: 60_000 }));
    nodes.push(await startServerProcess({ ...env, PORT: String(nodePorts[1]) }, { timeoutMs: 60_000 }));
    if (nginx.exitCode !== null) throw new Error(`nginx exited:\n${nginxLog}`);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((resolveExit) => nginx!.once('exit', resolveExit));
      nginx.kill('SIGTERM');
      await exited;
    }
    await db?.drop();
    await dropRedisPrefix(prefix);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves over TLS with the https issuer, whose discovery names https endpoints', async () => {
    const discovery = await onNginx('/.well-known/openid-configuration');
    expect(discovery.status).toBe(200);
    const metadata = JSON.parse(discovery.body) as Record<string, unknown>;
    expect(metadata.issuer).toBe(issuer);
    expect(metadata.token_endpoint).toBe(`${issuer}/oauth/token`);
    expect(metadata.introspection_endpoint).toBe(`${issuer}/oauth/introspect`);
    expect(discovery.headers['strict-transport-security']).toBeDefined();
  });

  it('reaches both nodes', async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `deployment-both-${i}-${randomBytes(4).toString('hex')}`);
    for (const id of ids) expect((await onNginx('/.well-known/openid-configuration', { headers: { 'x-request-id': id } })).status).toBe(200);
    const served = await Promise.all(ids.map(async (id) => (await requestLine(id)).node));
    expect(new Set(served)).toEqual(new Set([0, 1]));
  });

  it('signs a user in through the proxy with Secure cookies, and the session holds on either node', async () => {
    const form = await onNginx('/login');
    expect(form.status).toBe(200);
    const csrfCookie = form.headers['set-cookie']!.find((cookie) => cookie.startsWith('tessera_login_csrf='))!;
    expect(csrfCookie).toMatch(/; Secure/);
    expect(csrfCookie).toMatch(/; HttpOnly/);
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)![1]!;
    const signedIn = await onNginx('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfCookie.split(';')[0]! },
      body: new URLSearchParams({ csrf, username: 'admin', password: ADMIN_PASSWORD, next: '/settings/tokens' }).toString(),
    });
    expect(signedIn.status).toBe(303);
    const sessionCookie = signedIn.headers['set-cookie']!.find((cookie) => cookie.startsWith('tessera_session='))!;
    expect(sessionCookie).toMatch(/; Secure/);
    expect(sessionCookie).toMatch(/; HttpOnly/);
    // Round robin sends consecutive requests to the two nodes in turn: the session is Redis's, not a node's.
    const served = new Set<number>();
    for (let i = 0; i < 4; i += 1) {
      const id = `deployment-session-${i}-${randomBytes(4).toString('hex')}`;
      const page = await onNginx('/settings/tokens', { headers: { cookie: sessionCookie.split(';')[0]!, 'x-request-id': id } });
      expect(page.status).toBe(200);
      expect(page.body).toContain('admin');
      served.add((await requestLine(id)).node);
    }
    expect(served).toEqual(new Set([0, 1]));
  });

  it("takes the client's address from nginx, never the X-Forwarded-For a client sends", async () => {
    const id = `deployment-xff-${randomBytes(4).toString('hex')}`;
    const answer = await onNginx('/.well-known/openid-configuration', { headers: { 'x-forwarded-for': SPOOFED_ADDRESS, 'x-request-id': id } });
    expect(answer.status).toBe(200);
    expect((await requestLine(id)).line.ip).toBe(CLIENT_ADDRESS);
  });

  it('believes no X-Forwarded-* header from anyone but the proxy: a direct request is plain http, from its own address', async () => {
    const id = `deployment-direct-${randomBytes(4).toString('hex')}`;
    const direct = await send(httpRequest, `${nodes[0]!.url}/.well-known/openid-configuration`, {
      headers: { 'x-forwarded-for': SPOOFED_ADDRESS, 'x-forwarded-proto': 'https', 'x-request-id': id },
      localAddress: STRANGER_ADDRESS,
    });
    expect(direct.status).toBe(403);
    const { line } = await requestLine(id);
    expect(line).toMatchObject({ ip: STRANGER_ADDRESS, status: 403 });
    // Health checks answer over plain http, for the orchestrator's probes.
    expect((await send(httpRequest, `${nodes[0]!.url}/readyz`, { localAddress: STRANGER_ADDRESS })).status).toBe(200);
  });

  it('redirects plain http to https, and never serves the metrics on the public port', async () => {
    const plain = await send(httpRequest, `http://127.0.0.1:${httpPort}/settings/tokens?x=1`, { headers: { host: '127.0.0.1' }, localAddress: CLIENT_ADDRESS });
    expect(plain.status).toBe(308);
    expect(plain.headers.location).toBe('https://127.0.0.1/settings/tokens?x=1');
    expect((await onNginx('/metrics')).status).toBe(404);
  });
});
