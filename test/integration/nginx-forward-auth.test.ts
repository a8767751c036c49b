import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/private-redis.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';

const NGINX = '/usr/sbin/nginx';

// A real nginx (Debian's package, which .ci/run installs) in front of a small upstream, asking
// Tessera's /auth/verify through auth_request: allowed, missing scope, revoked.
describe('forward-auth through a real nginx', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let tessera: TestTessera;
  let upstream: Server;
  let nginx: ChildProcess | undefined;
  let dir: string;
  let base: string;
  let nginxLog = '';

  beforeAll(async () => {
    if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: this test runs Debian's nginx. Install it with apt-get install -y nginx-light (.ci/run does).`);
    db = await createTestDatabase();
    tessera = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix });

    // The upstream echoes what the gateway told it about the caller.
    upstream = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url, username: req.headers['x-auth-username'] ?? null, scope: req.headers['x-auth-scope'] ?? null }));
    });
    const upstreamPort = await freePort();
    await new Promise<void>((resolve) => upstream.listen(upstreamPort, '127.0.0.1', resolve));

    dir = await mkdtemp(join(tmpdir(), 'tessera-nginx-'));
    await mkdir(join(dir, 'temp'));
    const port = await freePort();
    const tesseraHost = new URL(tessera.url).host;
    const protect = (path: string, scope: string) => `
    location ${path} {
      set $required_scope ${scope};
      auth_request /_tessera_verify;
      auth_request_set $auth_username $upstream_http_x_auth_username;
      auth_request_set $auth_scope $upstream_http_x_auth_scope;
      proxy_set_header X-Auth-Username $auth_username;
      proxy_set_header X-Auth-Scope $auth_scope;
      proxy_pass http://127.0.0.1:${upstreamPort};
    }`;
    await writeFile(
      join(dir, 'nginx.conf'),
      `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/temp/body;
  proxy_temp_path ${dir}/temp/proxy;
  fastcgi_temp_path ${dir}/temp/fastcgi;
  uwsgi_temp_path ${dir}/temp/uwsgi;
  scgi_temp_path ${dir}/temp/scgi;
  server {
    listen 127.0.0.1:${port};
    location = /_tessera_verify {
      internal;
      proxy_pass http://${tesseraHost}/auth/verify?scope=$required_scope;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
    }
    ${protect('/records', 'read')}
    ${protect('/deposits', 'deposit:write')}
  }
}
`,
    );
    nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    nginx.stderr!.on('data', (d: Buffer) => (nginxLog += d.toString()));
    base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await fetch(`${base}/`);
        break;
      } catch {
        if (Date.now() > deadline || nginx.exitCode !== null) throw new Error(`nginx did not start:\n${nginxLog}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  });

  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((resolve) => nginx!.once('exit', resolve));
      nginx.kill('SIGTERM');
      await exited;
    }
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
    await tessera?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lets an allowed request through with the identity headers, refuses a missing scope, and a revoked token', async () => {
    const by = { actor: 'test' };
    await tessera.core.accounts.createUser({ username: 'reader', password: 'reader-password', scopes: ['read', 'deposit:write'] }, by);
    const user = (await tessera.core.accounts.findUser('reader'))!;
    const { token, record } = await tessera.core.personalTokens.create(user, { name: 'gateway', scopes: ['read'] }, by);

    const allowed = await fetch(`${base}/records/42`, { headers: { authorization: `Bearer ${token}` } });
    expect(allowed.status).toBe(200);
    expect(await allowed.json()).toEqual({ path: '/records/42', username: 'reader', scope: 'read' });
    // The token in the query string reaches Tessera through X-Original-URI.
    expect((await fetch(`${base}/records/42?access_token=${token}`)).status).toBe(200);

    expect((await fetch(`${base}/records/42`)).status).toBe(401);
    expect((await fetch(`${base}/deposits/7`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);

    await tessera.core.personalTokens.revoke(user.id, record.id, by);
    expect((await fetch(`${base}/records/42`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
  });
});
