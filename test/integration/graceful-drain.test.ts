import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Agent, request } from 'node:http';
import { once } from 'node:events';
import { startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startTestTessera } from '../support/start-tessera.ts';

const GRACE_MS = 30_000;

interface Outcome {
  /** Answered in full with the expected status. */
  answered: number;
  /** Of those, answered with `Connection: close` (the server draining). */
  answeredWithClose: number;
  /** Sent on an open connection and then reset, cut off or answered with an unexpected status. */
  failures: string[];
  /** A new connection refused: the listener is closed, the client stops. */
  refused: boolean;
}

interface Call {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  expect: (status: number, body: string) => boolean;
}

/** One request on `agent`: 'refused' when a new connection is refused, otherwise what came back. */
function send(base: URL, agent: Agent, call: Call): Promise<{ status: number; body: string; close: boolean } | { error: string; refused: boolean }> {
  return new Promise((resolve) => {
    const req = request(
      { host: base.hostname, port: base.port, method: call.method, path: call.path, headers: call.headers, agent },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, close: res.headers.connection === 'close' }));
        res.on('error', (error) => resolve({ error: `${(error as NodeJS.ErrnoException).code ?? error.message} mid-answer`, refused: false }));
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => {
      // Refused means the connect failed: nothing was sent. Anything else was sent and lost.
      resolve({ error: `${error.code ?? error.message} (${req.reusedSocket ? 'reused' : 'new'} connection)`, refused: error.code === 'ECONNREFUSED' });
    });
    req.end(call.body);
  });
}

/**
 * A keep-alive client sending `next()` back to back (after `pauseMs`) until a new connection is
 * refused. `onAnswered` hears of each request once it has come back.
 */
async function keepAliveClient(base: URL, next: () => Call, outcome: Outcome, options: { pauseMs?: number; onAnswered?: (call: Call) => void } = {}): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    while (!outcome.refused) {
      const call = next();
      const result = await send(base, agent, call);
      options.onAnswered?.(call);
      if ('error' in result) {
        if (result.refused) outcome.refused = true;
        else outcome.failures.push(`${call.method} ${call.path}: ${result.error}`);
      } else if (!call.expect(result.status, result.body)) {
        outcome.failures.push(`${call.method} ${call.path}: ${result.status} ${result.body.slice(0, 200)}`);
      } else {
        outcome.answered++;
        if (result.close) outcome.answeredWithClose++;
      }
      if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  } finally {
    agent.destroy();
  }
}

// The real server process under keep-alive load from several clients (slow password logins that
// hash with argon2, introspection, pending device polls on the token endpoint, and one client that
// pauses between requests so that its connection is idle now and then). SIGTERM arrives while
// a login is being hashed. Every request sent on an open connection must get its whole answer;
// a client whose answer said `Connection: close` reconnects, and once the listener is closed that
// connect is refused, which ends the client (nothing was sent, so it is not a failure).
describe('SIGTERM under keep-alive load', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let server: ServerProcess;
  let rsSecret: string;
  const env = {
    DATABASE_URL: '',
    REDIS_URL: TEST_REDIS_URL,
    TESSERA_REDIS_PREFIX: prefix,
    TESSERA_KEY_SECRET: 'drain-test-key-encryption-secret-0123456789',
    TESSERA_COOKIE_KEYS: 'drain-test-cookie-key-0123456789abcdefghijkl',
    TESSERA_DEVICE_POLL_INTERVAL: '1',
    TESSERA_API_REQUESTS_PER_IP_PER_MINUTE: '1000000',
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    env.DATABASE_URL = db.url;
    const setup = await startTestTessera(env);
    const by = { actor: 'test' };
    try {
      await setup.core.accounts.createUser({ username: 'alice', password: 'alice-password', scopes: ['read'] }, by);
      rsSecret = (await setup.core.clients.create({ clientId: 'records-api', name: 'Records API', kind: 'resource_server' }, by)).secret!;
      await setup.core.clients.create({ clientId: 'cli', name: 'Repository CLI', kind: 'device', scopes: ['read'] }, by);
    } finally {
      await setup.stop();
    }
    // Heavier argon2 than the other tests: a login takes long enough to be in flight at the signal.
    // Neither pacing nor queueing of the hashing (three logins at once at most): on this shared
    // machine a login must not be answered 503 busy, which would hide what this test counts.
    server = await startServerProcess({
      ...env,
      TESSERA_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      TESSERA_ARGON2_MEMORY_KIB: '65536',
      TESSERA_ARGON2_TIME_COST: '3',
      TESSERA_HASH_BUSY_CORE_PERCENT: '100',
      TESSERA_HASH_CONCURRENCY: '3',
    });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it('answers every request sent on an open connection and exits well before the grace period', async () => {
    const base = new URL(server.url);
    const session = await fetch(new URL('/users/alice/login', base), { method: 'POST', body: new URLSearchParams({ password: 'alice-password' }) });
    expect(session.status).toBe(200);
    const sessionToken = ((await session.json()) as { session: string }).session;
    const deviceStart = await fetch(new URL('/oauth/device/code', base), { method: 'POST', body: new URLSearchParams({ client_id: 'cli', scope: 'read' }) });
    expect(deviceStart.status).toBe(200);
    const deviceCode = ((await deviceStart.json()) as { device_code: string }).device_code;

    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const login: Call = {
      method: 'POST',
      path: '/users/alice/login',
      headers: form,
      body: 'password=alice-password',
      expect: (status) => status === 200,
    };
    const introspect: Call = {
      method: 'POST',
      path: '/oauth/introspect',
      headers: { ...form, authorization: `Basic ${Buffer.from(`records-api:${rsSecret}`).toString('base64')}` },
      body: new URLSearchParams({ token: sessionToken }).toString(),
      expect: (status, body) => status === 200 && (JSON.parse(body) as { active: boolean }).active,
    };
    const devicePoll: Call = {
      method: 'POST',
      path: '/oauth/token',
      headers: form,
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: deviceCode, client_id: 'cli' }).toString(),
      expect: (status, body) => status === 400 && /"error":"(authorization_pending|slow_down)"/.test(body),
    };
    const health: Call = { method: 'GET', path: '/healthz', headers: {}, expect: (status) => status === 200 };

    const outcome: Outcome = { answered: 0, answeredWithClose: 0, failures: [], refused: false };
    const outcomes: Outcome[] = [];
    const exited = once(server.child, 'exit') as Promise<[number | null]>;
    let signalledAt: number | undefined;
    let loginsDone = 0;
    const signalDuringLogin = (call: Call) => {
      // After a few logins, the signal goes out while the next login is in flight (being hashed).
      if (call === login && ++loginsDone === 3) {
        void send(base, new Agent({ keepAlive: false }), login).then((result) => {
          if ('error' in result || !login.expect(result.status, result.body)) outcome.failures.push(`the login in flight at SIGTERM: ${JSON.stringify(result)}`);
          else outcome.answered++;
        });
        setTimeout(() => {
          signalledAt = Date.now();
          server.child.kill('SIGTERM');
        }, 20);
      }
    };
    const client = (calls: Call[], options: { pauseMs?: number; onAnswered?: (call: Call) => void } = {}) => {
      const own: Outcome = { answered: 0, answeredWithClose: 0, failures: [], refused: false };
      outcomes.push(own);
      let i = 0;
      return keepAliveClient(base, () => calls[i++ % calls.length]!, own, options);
    };
    const clients = [
      client([login], { onAnswered: signalDuringLogin }),
      client([login, introspect]),
      client([introspect]),
      client([introspect, health]),
      client([introspect, devicePoll, introspect]),
      client([health, introspect], { pauseMs: 150 }),
      // Polls more than the drain's quiet period apart, so its connection is closed while idle
      // (a pause of exactly the quiet period would race that close, as with any HTTP/1.1 server).
      client([devicePoll], { pauseMs: 1300 }),
    ];
    const [code] = await exited;
    const exitMs = Date.now() - signalledAt!;
    await Promise.all(clients);
    const everyClientRefused = outcomes.every((o) => o.refused);
    outcomes.push(outcome);

    const failures = outcomes.flatMap((o) => o.failures);
    const answered = outcomes.reduce((sum, o) => sum + o.answered, 0);
    const closed = outcomes.reduce((sum, o) => sum + o.answeredWithClose, 0);
    console.log(`drain under keep-alive load: ${answered} answered (${closed} with Connection: close), ${failures.length} failed, exit ${exitMs} ms after SIGTERM`);
    expect(failures).toEqual([]);
    expect(code).toBe(0);
    expect(exitMs).toBeLessThan(GRACE_MS / 2);
    // The five busy clients (on express, on the raw node:http introspection and token endpoints,
    // or on both) were each told once to close their connection, not cut.
    expect(outcomes.slice(0, 5).map((o) => o.answeredWithClose)).toEqual([1, 1, 1, 1, 1]);
    expect(closed).toBeGreaterThanOrEqual(5);
    expect(everyClientRefused).toBe(true);
  }, 90_000);
});
