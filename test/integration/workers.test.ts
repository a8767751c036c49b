import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKeepAliveLoad, type KeepAliveLoad, type LoadCall, type LoadClient } from '../support/keep-alive-load.ts';
import { freePort } from '../support/private-redis.ts';
import { reportFigures } from '../support/resilience-figures.ts';
import { spawnServerProcess, startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from '../support/services.ts';

const GRACE_MS = 30_000;
const RS_SECRET = 'workers-resource-server-secret-0123456789';
const ADMIN_PASSWORD = 'workers-admin-password';
const LISTENING = /"msg":"Tessera is listening"/;

interface Answer {
  status: number;
  body: string;
  reusedSocket: boolean;
}

function send(base: URL, agent: Agent | false, options: { method: string; path: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: base.hostname, port: base.port, agent, method: options.method, path: options.path, headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reusedSocket: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The pid field of a JSON log line. */
const pidOf = (line: string) => (JSON.parse(line) as { pid: number }).pid;

/** A keep-alive connection to one worker: every request after the first must reuse its socket. */
interface PinnedClient {
  pid: number;
  call(options: { method: string; path: string; headers?: Record<string, string>; body?: string }): Promise<Answer>;
  close(): void;
}

// `node src/main.ts` with TESSERA_WORKERS=2 on PostgreSQL and Redis: a supervisor that serves
// nothing and two workers sharing its port, each with its own introspection cache.
describe('TESSERA_WORKERS=2: a supervisor and two workers on one port', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let configDir: string;
  let server: ServerProcess;
  let base: URL;
  let metricsPort: number;
  const pinned: PinnedClient[] = [];

  /** Opens one new connection; its first request (GET /healthz) says in the log which worker holds it. */
  async function connect(): Promise<PinnedClient> {
    const agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
    const requestId = randomUUID();
    const first = await send(base, agent, { method: 'GET', path: '/healthz', headers: { 'x-request-id': requestId } });
    expect(first.status).toBe(200);
    const [line] = await server.waitForLines(new RegExp(`"reqId":"${requestId}"`));
    const client: PinnedClient = {
      pid: pidOf(line!),
      async call(options) {
        const answer = await send(base, agent, options);
        // A new socket could land on another worker: the test's attribution would be wrong.
        expect(answer.reusedSocket).toBe(true);
        return answer;
      },
      close: () => agent.destroy(),
    };
    pinned.push(client);
    return client;
  }

  /** Connects until it holds a connection to each of `pids`, or gives up after `attempts`. */
  async function connectToEach(pids: number[], attempts = 40): Promise<Map<number, PinnedClient>> {
    const found = new Map<number, PinnedClient>();
    for (let i = 0; i < attempts && found.size < pids.length; i++) {
      const client = await connect();
      expect(pids).toContain(client.pid);
      if (!found.has(client.pid)) found.set(client.pid, client);
      else client.close();
    }
    expect([...found.keys()].sort()).toEqual([...pids].sort());
    return found;
  }

  async function introspect(client: PinnedClient, token: string): Promise<Record<string, unknown>> {
    const answer = await client.call({
      method: 'POST',
      path: '/oauth/introspect',
      headers: { authorization: `Basic ${Buffer.from(`records-api:${RS_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(answer.status).toBe(200);
    return JSON.parse(answer.body) as Record<string, unknown>;
  }

  /** The pids of the workers the supervisor has started, from its log. */
  const startedWorkers = () =>
    server
      .stdout()
      .split('\n')
      .filter((line) => line.includes('"msg":"worker started"'))
      .map((line) => (JSON.parse(line) as { workerPid: number }).workerPid);

  beforeAll(async () => {
    db = await createTestDatabase();
    configDir = await mkdtemp(join(tmpdir(), 'tessera-workers-'));
    const configFile = join(configDir, 'tessera.json');
    const secretSha256 = createHash('sha256').update(RS_SECRET).digest('hex');
    await writeFile(configFile, JSON.stringify({ clients: [{ clientId: 'records-api', name: 'Records API', kind: 'resource_server', secretSha256, scopes: ['read'] }] }));
    metricsPort = await freePort();
    server = await startServerProcess(
      {
        TESSERA_WORKERS: '2',
        TESSERA_METRICS_PORT: String(metricsPort),
        DATABASE_URL: db.url,
        REDIS_URL: TEST_REDIS_URL,
        TESSERA_REDIS_PREFIX: prefix,
        TESSERA_CONFIG: configFile,
        TESSERA_KEY_SECRET: 'workers-key-encryption-secret-0123456789',
        TESSERA_COOKIE_KEYS: 'workers-cookie-key-0123456789abcdefghijkl',
        TESSERA_ADMIN_USERNAME: 'admin',
        TESSERA_ADMIN_PASSWORD: ADMIN_PASSWORD,
        TESSERA_INTROSPECTION_CACHE_TTL: '60',
        TESSERA_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      },
      { timeoutMs: 90_000 },
    );
    await server.waitForLines(LISTENING, 2, 90_000);
    base = new URL(server.url);
  }, 120_000);

  afterAll(async () => {
    for (const client of pinned) client.close();
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    await db?.drop();
    await dropRedisPrefix(prefix);
    if (configDir) await rm(configDir, { recursive: true, force: true });
  });

  it('serves from both workers; a token from one is active on either, and a revocation through one is honoured by the other for good', async () => {
    const workers = startedWorkers();
    expect(workers).toHaveLength(2);
    expect(workers).not.toContain(server.child.pid);
    const clients = await connectToEach(workers);
    const [a, b] = workers.map((pid) => clients.get(pid)!);

    const login = await a!.call({ method: 'POST', path: '/users/admin/login', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: ADMIN_PASSWORD }) });
    expect(login.status).toBe(200);
    const session = String((JSON.parse(login.body) as { session: string }).session);

    // Both workers answer active, and then hold the answer in their caches (60 s).
    for (const client of [a!, b!, a!, b!]) expect(await introspect(client, session)).toMatchObject({ active: true });

    const logout = await a!.call({ method: 'POST', path: '/logout', headers: { 'x-session': session } });
    expect(logout.status).toBeLessThan(300);
    expect(await introspect(a!, session)).toEqual({ active: false });

    // Only the invalidation (through Redis) can make B let go of its cached answer within 60 s.
    const deadline = Date.now() + 20_000;
    while ((await introspect(b!, session)).active !== false) {
      if (Date.now() > deadline) throw new Error('worker B still answered active 20 s after the logout through worker A');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (let i = 0; i < 20; i++) {
      for (const client of [a!, b!]) expect(await introspect(client, session)).toEqual({ active: false });
    }
  }, 90_000);

  it("serves the workers' metrics from the supervisor's own listener, added up", async () => {
    const clients = await connectToEach(startedWorkers());
    for (const client of clients.values()) {
      for (let i = 0; i < 3; i++) expect((await client.call({ method: 'GET', path: '/api/v1/me' })).status).toBe(401);
    }
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    // Three answers from each worker: only the supervisor's sum of both gives six.
    expect(text).toContain('tessera_http_requests_total{route="/api/v1/me",method="GET",status="401"} 6');
    expect((await fetch(`${base.origin}/metrics`)).status).toBe(404);
  });

  it('restarts a worker killed with SIGKILL, and requests keep being answered', async () => {
    const [victim, survivor] = startedWorkers();
    process.kill(victim!, 'SIGKILL');
    const [died] = await server.waitForLines(new RegExp(`"workerPid":${victim}.*"msg":"worker died; restarting it"`), 1, 30_000);
    expect(JSON.parse(died!)).toMatchObject({ signal: 'SIGKILL' });

    // Meanwhile the other worker answers every new connection.
    for (let i = 0; i < 5; i++) expect((await send(base, false, { method: 'GET', path: '/healthz' })).status).toBe(200);

    await server.waitForLines(LISTENING, 3, 90_000);
    const workers = startedWorkers();
    expect(workers).toHaveLength(3);
    const replacement = workers[2]!;
    expect(replacement).not.toBe(victim);
    // The replacement and the survivor both take connections on the same port.
    await connectToEach([survivor!, replacement]);
    for (let i = 0; i < 10; i++) expect((await send(base, false, { method: 'GET', path: '/healthz' })).status).toBe(200);
  }, 150_000);

  it('on SIGTERM drains every worker and exits 0, well before the grace period', async () => {
    for (const client of pinned) client.close();
    const running = startedWorkers().slice(-2);
    const started = performance.now();
    const code = await server.stop();
    const tookMs = performance.now() - started;
    expect(code).toBe(0);
    expect(tookMs).toBeLessThan(GRACE_MS / 2);
    const stoppedBy = server
      .stdout()
      .split('\n')
      .filter((line) => line.includes('"msg":"Tessera stopped"'))
      .map(pidOf);
    expect(stoppedBy.sort()).toEqual([...running].sort());
    expect(server.stdout()).toContain('"msg":"every worker has exited; supervisor stopped"');
    for (const pid of running) expect(() => process.kill(pid, 0)).toThrow();
  }, 60_000);
});

// SIGHUP to the supervisor under keep-alive load: it replaces the workers one at a time (a new one
// listens before an old one drains), so not one request fails. A replacement that cannot start
// (a broken configuration file) stops the roll, and the old workers keep serving.
describe('TESSERA_WORKERS=2: a rolling restart on SIGHUP', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;
  let configDir: string;
  let configFile: string;
  let configText: string;
  let server: ServerProcess;
  let base: URL;
  let session: string;

  const lines = () => server.stdout().split('\n').slice(0, -1);
  const startedWorkers = () => lines().filter((line) => line.includes('"msg":"worker started"')).map((line) => (JSON.parse(line) as { workerPid: number }).workerPid);
  const isAlive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const loadClients = (): LoadClient[] => {
    const introspect: LoadCall = {
      method: 'POST',
      path: '/oauth/introspect',
      headers: { authorization: `Basic ${Buffer.from(`records-api:${RS_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: session }).toString(),
      expect: (status, body) => status === 200 && (JSON.parse(body) as { active: boolean }).active,
    };
    const login: LoadCall = { method: 'POST', path: '/users/admin/login', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: ADMIN_PASSWORD }), expect: (status) => status === 200 };
    const verify: LoadCall = { method: 'GET', path: '/auth/verify', headers: { 'x-session': session }, expect: (status) => status === 200 };
    return [{ calls: [introspect] }, { calls: [introspect, verify] }, { calls: [verify] }, { calls: [login, introspect, verify] }, { calls: [verify, introspect], pauseMs: 150 }];
  };
  const waitForRequests = async (load: KeepAliveLoad, count: number) => {
    const target = load.counts().requests + count;
    for (const deadline = Date.now() + 60_000; load.counts().requests < target; ) {
      if (Date.now() > deadline) throw new Error(`fewer than ${count} requests within 60 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    configDir = await mkdtemp(join(tmpdir(), 'tessera-workers-roll-'));
    configFile = join(configDir, 'tessera.json');
    const secretSha256 = createHash('sha256').update(RS_SECRET).digest('hex');
    configText = JSON.stringify({ clients: [{ clientId: 'records-api', name: 'Records API', kind: 'resource_server', secretSha256, scopes: ['read'] }] });
    await writeFile(configFile, configText);
    server = await startServerProcess(
      {
        TESSERA_WORKERS: '2',
        DATABASE_URL: db.url,
        REDIS_URL: TEST_REDIS_URL,
        TESSERA_REDIS_PREFIX: prefix,
        TESSERA_CONFIG: configFile,
        TESSERA_KEY_SECRET: 'workers-key-encryption-secret-0123456789',
        TESSERA_COOKIE_KEYS: 'workers-cookie-key-0123456789abcdefghijkl',
        TESSERA_ADMIN_USERNAME: 'admin',
        TESSERA_ADMIN_PASSWORD: ADMIN_PASSWORD,
        TESSERA_SHUTDOWN_GRACE_MS: String(GRACE_MS),
        TESSERA_API_REQUESTS_PER_IP_PER_MINUTE: '1000000',
        // Logins are part of the load: never answered 503 busy on this shared machine.
        TESSERA_HASH_BUSY_CORE_PERCENT: '100',
      },
      { timeoutMs: 90_000 },
    );
    await server.waitForLines(LISTENING, 2, 90_000);
    base = new URL(server.url);
    const login = await send(base, false, { method: 'POST', path: '/users/admin/login', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: ADMIN_PASSWORD }) });
    expect(login.status).toBe(200);
    session = String((JSON.parse(login.body) as { session: string }).session);
  }, 120_000);

  afterAll(async () => {
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    for (const pid of server ? startedWorkers() : []) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await db?.drop();
    await dropRedisPrefix(prefix);
    if (configDir) await rm(configDir, { recursive: true, force: true });
  });

  it('replaces every worker, one at a time, and not one request fails', async () => {
    const old = startedWorkers();
    expect(old).toHaveLength(2);
    const load = startKeepAliveLoad(base, loadClients());
    let during;
    let rollMs;
    let result;
    try {
      await waitForRequests(load, 200);
      const before = load.counts();
      const signalledAt = performance.now();
      server.child.kill('SIGHUP');
      await server.waitForLines(/"msg":"rolling restart done"/, 1, 120_000);
      rollMs = Math.round(performance.now() - signalledAt);
      during = load.counts().requests - before.requests;
      await waitForRequests(load, 200);
    } finally {
      result = await load.stop();
    }
    const { failures, ...counts } = result;
    reportFigures(`workers: rolling restart of 2 workers in ${rollMs} ms: ${during} requests during it; ${counts.requests} in all, ${counts.failed} failed`, {
      scenario: 'workers-rolling-restart',
      ...counts,
      requestsDuringRoll: during,
      rollMs,
    });
    expect(failures).toEqual([]);
    expect(counts.succeeded).toBe(counts.requests);
    expect(during).toBeGreaterThan(0);

    // Two new workers, the old ones gone (retired, not died and restarted).
    const workers = startedWorkers();
    expect(workers).toHaveLength(4);
    const fresh = workers.slice(2);
    for (const pid of old) expect(isAlive(pid)).toBe(false);
    for (const pid of fresh) expect(isAlive(pid)).toBe(true);
    expect(server.stdout()).not.toContain('"msg":"worker died; restarting it"');
    // In the supervisor's log (one process, so in order): a new worker listens before an old one is
    // told to drain, and that one has exited before the next new one starts.
    const at = (pid: number, msg: string) => lines().findIndex((line) => line.includes(`"workerPid":${pid},`) && line.includes(`"msg":"${msg}"`));
    const order = [old[0]!, old[1]!].flatMap((pid, i) => [
      at(fresh[i]!, 'worker started'),
      at(fresh[i]!, 'rolling restart: the new worker listens'),
      at(pid, 'rolling restart: draining an old worker'),
      at(pid, 'worker exited'),
    ]);
    expect(order.every((index) => index >= 0)).toBe(true);
    expect([...order].sort((x, y) => x - y)).toEqual(order);
  }, 180_000);

  it('stops the roll at a replacement that cannot start (a broken configuration file); the old workers keep serving', async () => {
    const serving = startedWorkers().slice(-2);
    await writeFile(configFile, '{ "clients": [ not json');
    const load = startKeepAliveLoad(base, loadClients());
    let result;
    try {
      await waitForRequests(load, 100);
      server.child.kill('SIGHUP');
      const [stopped] = await server.waitForLines(/"msg":"rolling restart stopped: a new worker did not start/, 1, 60_000);
      expect(stopped).toMatch(/exited \(code 78/);
      await server.waitForLines(/"msg":"rolling restart stopped before its end"/, 1, 10_000);
      await waitForRequests(load, 200);
    } finally {
      result = await load.stop();
    }
    expect(result.failures).toEqual([]);
    // One replacement tried, not restarted; both old workers still serve.
    expect(startedWorkers()).toHaveLength(5);
    expect(server.stdout()).not.toContain('"msg":"worker died; restarting it"');
    for (const pid of serving) expect(isAlive(pid)).toBe(true);

    // Mended, the next SIGHUP rolls to the end.
    await writeFile(configFile, configText);
    server.child.kill('SIGHUP');
    await server.waitForLines(/"msg":"rolling restart done"/, 2, 120_000);
    for (const pid of serving) expect(isAlive(pid)).toBe(false);
    expect(startedWorkers()).toHaveLength(7);
    expect((await send(base, false, { method: 'GET', path: '/healthz' })).status).toBe(200);
    expect(await server.stop()).toBe(0);
  }, 240_000);
});

// Workers that cannot start (PostgreSQL refuses connections) die as soon as they are forked: the
// supervisor must not restart them in a tight loop, and must still stop at once on SIGTERM.
describe('TESSERA_WORKERS=2 with workers that keep dying', () => {
  it('restarts them with a growing delay, and exits 0 on SIGTERM while a restart waits, cancelling it', async () => {
    const closedPort = await freePort();
    const supervisor = spawnServerProcess({
      TESSERA_WORKERS: '2',
      DATABASE_URL: `postgres://postgres@127.0.0.1:${closedPort}/nothing`,
      REDIS_URL: TEST_REDIS_URL,
      TESSERA_REDIS_PREFIX: uniqueRedisPrefix(),
      TESSERA_KEY_SECRET: 'workers-key-encryption-secret-0123456789',
      TESSERA_COOKIE_KEYS: 'workers-cookie-key-0123456789abcdefghijkl',
    });
    try {
      // Two forked at once, both dead: 0.5 s then 1 s; their two replacements: 2 s then 4 s. (A
      // worker that took 10 s to fail, on a very busy machine, would count as having lived.)
      const deaths = (await supervisor.waitForLines(/"msg":"worker died; restarting it"/, 4, 60_000)).map((line) => JSON.parse(line) as { delayMs: number; livedMs: number });
      let youngInARow = 0;
      const expected = deaths.map(({ livedMs }) => {
        youngInARow = livedMs < 10_000 ? youngInARow + 1 : 0;
        return youngInARow === 0 ? 0 : 500 * 2 ** (youngInARow - 1);
      });
      expect(deaths.map(({ delayMs }) => delayMs)).toEqual(expected);
      expect(deaths.filter(({ livedMs }) => livedMs < 10_000).length).toBeGreaterThan(0);

      // SIGTERM while no worker runs, a restart waiting (a worker that fails to start while told
      // to drain would rightly make the exit code 1): the restart is cancelled.
      const count = (msg: string) => supervisor.stdout().split(`"msg":"${msg}"`).length - 1;
      for (const deadline = Date.now() + 30_000; count('worker started') !== count('worker died; restarting it'); ) {
        if (Date.now() > deadline) throw new Error(`a worker kept running:\n${supervisor.stdout()}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const startedBefore = count('worker started');
      const started = performance.now();
      expect(await supervisor.stop()).toBe(0);
      expect(performance.now() - started).toBeLessThan(10_000);
      expect(count('worker started')).toBe(startedBefore);
      expect(supervisor.stdout()).toContain('"msg":"every worker has exited; supervisor stopped"');
    } finally {
      supervisor.child.kill('SIGKILL');
    }
  }, 90_000);
});

// SIGTERM as soon as the workers are forked: they are still loading and cannot hear a request to
// drain yet; the supervisor must still stop them at once, not wait out the grace period.
describe('TESSERA_WORKERS=2 stopped while its workers start', () => {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await db?.drop();
    await dropRedisPrefix(prefix);
  });

  it('exits 0 promptly', async () => {
    const supervisor = spawnServerProcess({
      TESSERA_WORKERS: '2',
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      TESSERA_REDIS_PREFIX: prefix,
      TESSERA_KEY_SECRET: 'workers-key-encryption-secret-0123456789',
      TESSERA_COOKIE_KEYS: 'workers-cookie-key-0123456789abcdefghijkl',
      TESSERA_SHUTDOWN_GRACE_MS: String(GRACE_MS),
    });
    try {
      await supervisor.waitForLines(/"msg":"worker started"/, 2, 60_000);
      const started = performance.now();
      expect(await supervisor.stop()).toBe(0);
      expect(performance.now() - started).toBeLessThan(GRACE_MS / 2);
    } finally {
      supervisor.child.kill('SIGKILL');
    }
  }, 90_000);
});

describe('TESSERA_WORKERS=2 refused where workers cannot share state', () => {
  let dataDir: string;
  let db: TestDatabase;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tessera-workers-embedded-'));
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await db?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses the embedded database, naming DATABASE_URL', async () => {
    await expect(startServerProcess({ TESSERA_WORKERS: '2', TESSERA_DATA_DIR: dataDir, REDIS_URL: TEST_REDIS_URL })).rejects.toThrow(
      /exited with 78 before listening[\s\S]*TESSERA_WORKERS=2 needs PostgreSQL \(DATABASE_URL\): the embedded database admits one process only/,
    );
  }, 60_000);

  it('refuses to run without Redis, naming REDIS_URL', async () => {
    await expect(startServerProcess({ TESSERA_WORKERS: '2', DATABASE_URL: db.url, TESSERA_DATA_DIR: dataDir })).rejects.toThrow(
      /exited with 78 before listening[\s\S]*needs Redis \(REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES\): without it, sessions and invalidations live in one process/,
    );
  }, 60_000);
});
