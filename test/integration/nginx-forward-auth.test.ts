import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/private-redis.ts';
import { NGINX, startPrivateNginx } from '../support/private-nginx.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera, type TestTessera } from '../support/start-tessera.ts';
import { createSelfSignedCertificate } from '../support/test-certificates.ts';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { accessTokenHash } from '../../src/introspection/dpop-proof.ts';

const by = { actor: 'test' };

// A real nginx (Debian's package, which .ci/run installs) in front of a small upstream, asking
// Tessera's /auth/verify through auth_request. Its configuration is the snippet of
// docs/resource-servers.md, taken from the document itself, so that the documented snippet is
// the one tested: with an http issuer, and with an https issuer behind nginx terminating TLS.

/** The first ```nginx block of the forward-auth section of docs/resource-servers.md. */
async function documentedSnippet(): Promise<string> {
  const doc = await readFile(new URL('../../docs/resource-servers.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Forward-auth for gateways'));
  const snippet = /```nginx\n([\s\S]*?)```/.exec(section)?.[1];
  if (!snippet) throw new Error('docs/resource-servers.md has no nginx snippet under "Forward-auth for gateways"');
  return snippet;
}

/** Replaces `from` in `text`, failing loudly when the document no longer holds it. */
function replaced(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`the documented nginx snippet no longer contains "${from}": update this test with it`);
  return text.replaceAll(from, to);
}

/**
 * The documented snippet pointed at this Tessera and upstream, with a second protected location
 * (/records, scope read) made from the documented one (/deposits, scope deposit:write).
 */
async function gatewayLocations(tesseraHost: string, upstreamPort: number): Promise<string> {
  let snippet = replaced(await documentedSnippet(), 'http://tessera:8080', `http://${tesseraHost}`);
  snippet = replaced(snippet, 'http://repository-api', `http://127.0.0.1:${upstreamPort}`);
  const deposits = /location \/deposits \{[\s\S]*?\n\}/.exec(snippet)?.[0];
  if (!deposits) throw new Error('the documented nginx snippet has no "location /deposits { … }" block');
  return `${snippet}\n${replaced(replaced(deposits, 'location /deposits', 'location /records'), 'deposit:write', 'read')}`;
}

interface Gateway {
  httpBase: string;
  /** nginx terminating TLS with a certificate of its own (`ca`). */
  httpsBase: string;
  ca: string;
  stop(): Promise<void>;
}

/** nginx with the documented snippet on a plain http and a TLS listener, in front of `tessera`. */
async function startGateway(tessera: TestTessera, upstreamPort: number): Promise<Gateway> {
  if (!existsSync(NGINX)) throw new Error(`${NGINX} is missing: this test runs Debian's nginx. Install it with apt-get install -y nginx-light (.ci/run does).`);
  const dir = await mkdtemp(join(tmpdir(), 'tessera-nginx-'));
  const { certFile, keyFile } = await createSelfSignedCertificate(dir, 'IP:127.0.0.1');
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const locations = await gatewayLocations(new URL(tessera.url).host, upstreamPort);
  let nginxLog = '';
  const nginx: ChildProcess = await startPrivateNginx(
    dir,
    `  server {
    listen 127.0.0.1:${httpPort};
    ${locations}
  }
  server {
    listen 127.0.0.1:${httpsPort} ssl;
    ssl_certificate ${certFile};
    ssl_certificate_key ${keyFile};
    ${locations}
  }`,
    (text) => (nginxLog += text),
    64,
  );
  const gateway: Gateway = {
    httpBase: `http://127.0.0.1:${httpPort}`,
    httpsBase: `https://127.0.0.1:${httpsPort}`,
    ca: await readFile(certFile, 'utf8'),
    async stop() {
      if (nginx.exitCode === null) {
        const exited = new Promise((resolve) => nginx.once('exit', resolve));
        nginx.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await fetch(`${gateway.httpBase}/`);
      break;
    } catch {
      if (Date.now() > deadline || nginx.exitCode !== null) {
        await gateway.stop();
        throw new Error(`nginx did not start:\n${nginxLog}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return gateway;
}

/** A GET through the gateway's TLS listener, trusting its certificate. */
function httpsGet(gateway: Gateway, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${gateway.httpsBase}${path}`, { headers, ca: gateway.ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

type KeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };

/** A DPoP proof (RFC 9449 §4.2) for one request. */
async function dpopProof(keys: KeyPair, htm: string, htu: string, accessToken?: string): Promise<string> {
  return new SignJWT({ htm, htu, jti: randomUUID(), ...(accessToken ? { ath: accessTokenHash(accessToken) } : {}) })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(keys.publicKey) })
    .setIssuedAt()
    .sign(keys.privateKey);
}

describe('forward-auth through a real nginx, configured with the documented snippet', () => {
  let upstream: Server;
  let upstreamPort: number;

  beforeAll(async () => {
    // The upstream echoes what the gateway told it about the caller.
    upstream = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ path: req.url, username: req.headers['x-auth-username'] ?? null }));
    });
    upstreamPort = await freePort();
    await new Promise<void>((resolve) => upstream.listen(upstreamPort, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
  });

  /** A Tessera on its own database and Redis prefix, started with `env`, and its gateway. */
  function tesseraBehindGateway(env: Record<string, string>) {
    const prefix = uniqueRedisPrefix();
    let db: TestDatabase | undefined;
    const running: { tessera?: TestTessera; gateway?: Gateway } = {};
    beforeAll(async () => {
      db = await createTestDatabase();
      running.tessera = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, ...env });
      running.gateway = await startGateway(running.tessera, upstreamPort);
    });
    afterAll(async () => {
      await running.gateway?.stop();
      await running.tessera?.stop();
      await db?.drop();
      await dropRedisPrefix(prefix);
    });
    return running as Required<typeof running>;
  }

  async function personalToken(tessera: TestTessera, username: string) {
    await tessera.core.accounts.createUser({ username, password: `${username}-password`, scopes: ['read', 'deposit:write'] }, by);
    const user = (await tessera.core.accounts.findUser(username))!;
    return { user, ...(await tessera.core.personalTokens.create(user, { name: 'gateway', scopes: ['read'] }, by)) };
  }

  describe('with an http issuer', () => {
    const running = tesseraBehindGateway({});

    it('lets an allowed request through with the identity headers, refuses a missing scope, and a revoked token', async () => {
      const { tessera, gateway } = running;
      const { user, token, record } = await personalToken(tessera, 'reader');
      const allowed = await fetch(`${gateway.httpBase}/records/42`, { headers: { authorization: `Bearer ${token}` } });
      expect(allowed.status).toBe(200);
      expect(await allowed.json()).toEqual({ path: '/records/42', username: 'reader' });
      // The token in the query string reaches Tessera through X-Original-URI.
      expect((await fetch(`${gateway.httpBase}/records/42?access_token=${token}`)).status).toBe(200);

      expect((await fetch(`${gateway.httpBase}/records/42`)).status).toBe(401);
      expect((await fetch(`${gateway.httpBase}/deposits/7`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);

      await tessera.core.personalTokens.revoke(user.id, record.id, by);
      expect((await fetch(`${gateway.httpBase}/records/42`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    });
  });

  /** A DPoP-bound client-credentials token of a new service client, and its key. */
  async function boundToken(tessera: TestTessera, clientId: string, headers: Record<string, string> = {}) {
    const secret = (await tessera.core.clients.create({ clientId, name: clientId, kind: 'service', scopes: ['read'] }, by)).secret!;
    const keys = await generateKeyPair('ES256');
    const tokenEndpoint = `${tessera.url}/oauth/token`;
    // The proof names the URL as the client addressed it (the scheme a proxy says it used).
    const htu = headers['x-forwarded-proto'] === 'https' ? tokenEndpoint.replace('http:', 'https:') : tokenEndpoint;
    const answer = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: { ...headers, authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded', dpop: await dpopProof(keys, 'POST', htu) },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'read' }),
    });
    const body = (await answer.json()) as { access_token: string; token_type: string };
    expect(body.token_type).toBe('DPoP');
    return { token: body.access_token, keys };
  }

  describe('with an http issuer, DPoP-bound tokens', () => {
    const running = tesseraBehindGateway({});

    it('lets a bound token through with a proof for the request nginx received, and refuses the rest', async () => {
      const { tessera, gateway } = running;
      const { token, keys } = await boundToken(tessera, 'dpop-harvester');
      const url = `${gateway.httpBase}/records/42?page=1`;
      const get = async (proof: string, scheme = 'DPoP') => fetch(url, { headers: { authorization: `${scheme} ${token}`, dpop: proof } });

      const allowed = await get(await dpopProof(keys, 'GET', url, token));
      expect(allowed.status).toBe(200);
      expect(await allowed.json()).toEqual({ path: '/records/42?page=1', username: null });

      const refusals: [string, Response][] = [
        ['wrong method', await get(await dpopProof(keys, 'POST', url, token))],
        ['wrong URL', await get(await dpopProof(keys, 'GET', `${gateway.httpBase}/records/43`, token))],
        ['other key', await get(await dpopProof(await generateKeyPair('ES256'), 'GET', url, token))],
        ['no ath', await get(await dpopProof(keys, 'GET', url))],
        ['as a bearer token', await get(await dpopProof(keys, 'GET', url, token), 'Bearer')],
      ];
      for (const [what, answer] of refusals) {
        expect([what, answer.status]).toEqual([what, 401]);
        // nginx passes Tessera's challenge on.
        expect([what, answer.headers.get('www-authenticate')]).toEqual([what, expect.stringMatching(/^DPoP /)]);
      }
      const once = await dpopProof(keys, 'GET', url, token);
      expect((await get(once)).status).toBe(200);
      expect((await get(once)).status).toBe(401);
    });
  });

  describe('with an https issuer, nginx terminating TLS', () => {
    const running = tesseraBehindGateway({ ISSUER: 'https://auth.example.org', TESSERA_KEY_SECRET: 'k'.repeat(40), TESSERA_COOKIE_KEYS: 'c'.repeat(40) });

    it('lets requests that reached nginx over https through, as the documented snippet is', async () => {
      const { tessera, gateway } = running;
      const { token } = await personalToken(tessera, 'secure-reader');
      const allowed = await httpsGet(gateway, '/records/42', { authorization: `Bearer ${token}` });
      expect(allowed).toEqual({ status: 200, body: JSON.stringify({ path: '/records/42', username: 'secure-reader' }) });
      expect((await httpsGet(gateway, '/deposits/7', { authorization: `Bearer ${token}` })).status).toBe(403);
      expect((await httpsGet(gateway, '/records/42')).status).toBe(401);
    });

    it('checks a DPoP proof against the https URL the client used', async () => {
      const { tessera, gateway } = running;
      // (Tessera's token endpoint reached as the gateway would: X-Forwarded-Proto from loopback.)
      const { token, keys } = await boundToken(tessera, 'secure-dpop-harvester', { 'x-forwarded-proto': 'https' });
      const url = `${gateway.httpsBase}/records/42`;
      const withProof = async (htu: string) => httpsGet(gateway, '/records/42', { authorization: `DPoP ${token}`, dpop: await dpopProof(keys, 'GET', htu, token) });
      expect((await withProof(url)).status).toBe(200);
      expect((await withProof(url.replace('https:', 'http:'))).status).toBe(401);
    });

    it('refuses what did not come over https, and logs why without the credential', async () => {
      const { tessera, gateway } = running;
      const { token } = await personalToken(tessera, 'careless-reader');
      const reasons = () => tessera.logs.lines.map((line) => JSON.parse(line) as { code?: string; detail?: string }).filter((line) => line.code === 'https_required').map((line) => line.detail);

      // The client used plain http to the gateway: nginx says so, and Tessera refuses.
      expect((await fetch(`${gateway.httpBase}/records/42`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
      expect(reasons()).toEqual([expect.stringMatching(/^the issuer is https but this request came over plain http from 127\.0\.0\.1 with X-Forwarded-Proto http: /)]);
      // Straight to Tessera, without the header a gateway sends.
      expect((await fetch(`${tessera.url}/auth/verify`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
      expect(reasons()[1]).toMatch(/without X-Forwarded-Proto: .*proxy_set_header X-Forwarded-Proto \$scheme/);
      // The OAuth endpoints on node:http log theirs too.
      for (const path of ['/oauth/token', '/oauth/introspect']) {
        const refused = await fetch(`${tessera.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${token}` });
        expect(refused.status).toBe(403);
      }
      const endpointReasons = tessera.logs.lines.map((line) => JSON.parse(line) as { msg?: string; detail?: string }).filter((line) => /refused/.test(line.msg ?? '') && line.detail);
      expect(endpointReasons.map((line) => line.msg)).toEqual(['token request refused: HTTPS is required', 'introspection request refused']);
      for (const line of endpointReasons) expect(line.detail).toMatch(/came over plain http from 127\.0\.0\.1 without X-Forwarded-Proto/);
      expect(tessera.logs.text).not.toContain(token);
    });
  });
});
