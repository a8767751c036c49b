import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/private-redis.ts';
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
