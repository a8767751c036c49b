import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import type { ConnectionState, EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { MARKER_KEY_PREFIX } from '../../src/store/redis/data-loss.ts';
import { createRedisEphemeralStore } from '../../src/store/redis/redis-ephemeral-store.ts';
import { inbox, waitFor } from '../contract/ephemeral-store.contract.ts';
import { freePort, killRedisServer, startRedisServer } from '../support/private-redis.ts';

// A redis-server of this file's own, so that it can be killed, frozen and restarted.

const COMMAND_TIMEOUT_MS = 300;
const NO_HANG_MS = COMMAND_TIMEOUT_MS + 500;

/** How long the promise took to settle, and the error it rejected with. */
async function timeRejection(promise: Promise<unknown>): Promise<{ ms: number; error: Error }> {
  const started = performance.now();
  try {
    await promise;
  } catch (error) {
    return { ms: performance.now() - started, error: error as Error };
  }
  throw new Error('expected a rejection, but the call succeeded');
}

async function pollUntilUp(store: EphemeralStore, timeoutMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    try {
      await store.ping();
      return performance.now() - started;
    } catch (error) {
      if (performance.now() - started > timeoutMs) throw new Error(`Redis was not back within ${timeoutMs} ms: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

function openSockets(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap').length;
}

/**
 * Records the timers that the code under test (the store, ioredis) starts from now on, through
 * this test environment's globals; Jest's own timers, which Node's resource list would mix in,
 * are not seen. `left()` lists those still pending, unref()'d or not.
 */
function trackTimers() {
  const real = { setTimeout, clearTimeout, setInterval, clearInterval };
  const pending = new Map<NodeJS.Timeout, string>();
  let started = 0;
  const origin = (kind: string, ms: unknown) => `${kind}(${String(ms)} ms) ${new Error().stack?.split('\n')[3]?.trim() ?? ''}`;
  globalThis.setTimeout = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    started += 1;
    const timer = real.setTimeout((...callArgs: unknown[]) => {
      pending.delete(timer);
      callback(...callArgs);
    }, ms, ...args);
    pending.set(timer, origin('setTimeout', ms));
    return timer;
  }) as unknown as typeof setTimeout;
  globalThis.setInterval = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    started += 1;
    const timer = real.setInterval(callback, ms, ...args);
    pending.set(timer, origin('setInterval', ms));
    return timer;
  }) as unknown as typeof setInterval;
  globalThis.clearTimeout = ((timer?: NodeJS.Timeout) => {
    if (timer) pending.delete(timer);
    real.clearTimeout(timer);
  }) as typeof clearTimeout;
  globalThis.clearInterval = ((timer?: NodeJS.Timeout) => {
    if (timer) pending.delete(timer);
    real.clearInterval(timer);
  }) as typeof clearInterval;
  return {
    started: () => started,
    left: () => [...pending.values()],
    restore: () => Object.assign(globalThis, real),
  };
}

describe('Redis outage: requests fail fast, the store recovers by itself', () => {
  let port: number;
  let server: ChildProcess | undefined;
  let store: EphemeralStore;
  const states: ConnectionState[] = [];
  const messages = inbox();
  const log: { level: 'warn' | 'info'; obj: Record<string, unknown>; msg: string }[] = [];

  beforeAll(async () => {
    port = await freePort();
    server = await startRedisServer(port);
    store = await createRedisEphemeralStore({
      url: `redis://127.0.0.1:${port}`,
      keyPrefix: 'outage:',
      connectTimeoutMs: 1000,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      heartbeatMs: 200,
      logger: {
        warn: (obj, msg) => log.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
        info: (obj, msg) => log.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
      },
    });
    await store.subscribe('invalidate', messages.handler, { onStateChange: (state) => states.push(state) });
  });
  afterAll(async () => {
    server?.kill('SIGCONT');
    await store?.close();
    await killRedisServer(server);
  });

  it('works while Redis is up', async () => {
    await store.set('k', 'v', { ttlMs: 60_000 });
    expect(await store.get('k')).toBe('v');
    await store.publish('invalidate', 'first');
    await messages.received('first');
    expect(states).toEqual([]);
  });

  it('when Redis dies, every call rejects at once with a clear message, and subscribers hear "down"', async () => {
    await killRedisServer(server);
    await waitFor('onStateChange("down")', () => states.includes('down'));
    expect(states).toEqual(['down']);
    const where = `127.0.0.1:${port}`;
    const calls: [string, () => Promise<unknown>][] = [
      ['PING', () => store.ping()],
      ['GET', () => store.get('k')],
      ['SET', () => store.set('k', 'v', { ttlMs: 1000 })],
      ['GETDEL', () => store.getDel('k')],
      ['increment', () => store.increment('n', 1000)],
      ['PUBLISH', () => store.publish('invalidate', 'lost')],
      ['SUBSCRIBE', () => store.subscribe('other', () => undefined)],
    ];
    for (const [operation, call] of calls) {
      const { ms, error } = await timeRejection(call());
      expect(error.message).toContain(`Redis at ${where} is unavailable`);
      expect(error.message).toContain(`${operation} was not run`);
      expect(ms).toBeLessThan(NO_HANG_MS);
    }
  });

  it('when Redis comes back on the same port, calls succeed again and subscribers hear "up" and get messages', async () => {
    server = await startRedisServer(port);
    const tookMs = await pollUntilUp(store, 5000);
    expect(tookMs).toBeLessThan(3000);
    await waitFor('onStateChange("up")', () => states.at(-1) === 'up', 5000);
    expect(states).toEqual(['down', 'up']);
    // A fresh server: the data is gone, and the Lua scripts must be loaded again (NOSCRIPT).
    expect(await store.get('k')).toBeNull();
    expect((await store.increment('n', 60_000)).count).toBe(1);
    await store.addToSet('s', 'm', 60_000);
    expect(await store.setMembers('s')).toEqual(['m']);
    await store.publish('invalidate', 'after restart');
    await messages.received('after restart');
  });

  it('logged the outage once per connection, not once per reconnection attempt', () => {
    const lost = log.filter((l) => l.msg.startsWith('lost the connection to Redis'));
    const restored = log.filter((l) => l.msg === 'reconnected to Redis');
    expect(lost.map((l) => l.obj.connection).sort()).toEqual(['commands', 'replicated-writes', 'subscriber']);
    expect(restored.map((l) => l.obj.connection).sort()).toEqual(['commands', 'replicated-writes', 'subscriber']);
  });

  it('when Redis stops answering (SIGSTOP), calls time out instead of hanging, and subscribers hear "down"', async () => {
    log.length = 0;
    server!.kill('SIGSTOP');
    try {
      const { ms, error } = await timeRejection(store.get('k'));
      expect(error.message).toBe(`Redis at 127.0.0.1:${port} did not answer GET within ${COMMAND_TIMEOUT_MS} ms`);
      expect(ms).toBeLessThan(NO_HANG_MS);
      // The subscriber connection is idle: only the heartbeat can notice.
      await waitFor('onStateChange("down") after the freeze', () => states.at(-1) === 'down', 3000);
      expect(log).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'Redis stopped answering; reconnecting', obj: expect.objectContaining({ connection: 'subscriber' }) }));
      const again = await timeRejection(store.ping());
      expect(again.ms).toBeLessThan(NO_HANG_MS);
    } finally {
      server!.kill('SIGCONT');
    }
    await pollUntilUp(store, 5000);
    await waitFor('onStateChange("up") after the freeze', () => states.at(-1) === 'up', 5000);
    expect(states).toEqual(['down', 'up', 'down', 'up']);
    await store.publish('invalidate', 'after thaw');
    await messages.received('after thaw');
  });

  it('a command in flight when the connection drops fails then, not after commandTimeout', async () => {
    server!.kill('SIGSTOP'); // the command is sent, and stays unanswered...
    const pending = timeRejection(store.get('k'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const killedAt = performance.now();
    await killRedisServer(server); // ...until the server dies and the socket closes
    const { error } = await pending;
    const afterKillMs = performance.now() - killedAt;
    expect(error.message).toContain('is unavailable');
    expect(error.message).toContain('GET was not run');
    // At the drop itself: before the first reconnection attempt (50 ms later), after which a
    // command kept for one retry (maxRetriesPerRequest: 1) would fail at the earliest.
    expect(afterKillMs).toBeLessThan(45);
    server = await startRedisServer(port);
    await pollUntilUp(store, 5000);
    await waitFor('onStateChange("up") after the restart', () => states.at(-1) === 'up', 5000);
  });

  it('close() leaves no socket or timer behind, even in the middle of an outage', async () => {
    const socketsBefore = openSockets(); // the shared store holds two of them
    const timers = trackTimers();
    const ownStates: ConnectionState[] = [];
    const own = await createRedisEphemeralStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'outage2:', connectTimeoutMs: 1000, commandTimeoutMs: COMMAND_TIMEOUT_MS });
    await own.subscribe('ch', () => undefined, { onStateChange: (state) => ownStates.push(state) });
    await killRedisServer(server);
    server = undefined;
    await waitFor('both stores to notice', () => ownStates.includes('down') && states.at(-1) === 'down');
    await expect(own.ping()).rejects.toThrow(/unavailable/);
    const started = performance.now();
    try {
      await Promise.all([own.close(), store.close()]);
    } finally {
      timers.restore();
    }
    expect(performance.now() - started).toBeLessThan(500);
    // Every connection was waiting to reconnect, each with a timer: none may remain, nor a socket.
    expect(timers.started()).toBeGreaterThan(0);
    expect(timers.left()).toEqual([]);
    expect(openSockets()).toBeLessThanOrEqual(socketsBefore - 2);
  });
});

describe('Redis unreachable at start-up', () => {
  it('the factory rejects quickly, naming host:port and the reason, never the password', async () => {
    const port = await freePort();
    const socketsBefore = openSockets();
    const timers = trackTimers();
    const { ms, error } = await timeRejection(
      createRedisEphemeralStore({ url: `redis://tessera:s3cret-pw@127.0.0.1:${port}/0`, keyPrefix: 'x:', connectTimeoutMs: 2000, commandTimeoutMs: COMMAND_TIMEOUT_MS }),
    ).finally(timers.restore);
    expect(error.message).toBe(`cannot reach Redis at 127.0.0.1:${port}: ECONNREFUSED`);
    expect(error.message).not.toContain('s3cret');
    expect(ms).toBeLessThan(1000);
    expect(timers.started()).toBeGreaterThan(0); // the connect deadline, at least
    expect(timers.left()).toEqual([]);
    expect(openSockets()).toBeLessThanOrEqual(socketsBefore);
  });

  it('the factory gives up within the time limits on a server that accepts connections but never answers', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => {
      sockets.add(socket);
      socket.resume(); // read and ignore: a paused socket would never see the client's FIN
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    try {
      const socketsBefore = openSockets();
      const timers = trackTimers();
      const { ms, error } = await timeRejection(
        createRedisEphemeralStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'x:', connectTimeoutMs: 1000, commandTimeoutMs: COMMAND_TIMEOUT_MS }),
      ).finally(timers.restore);
      expect(error.message).toMatch(new RegExp(`^cannot reach Redis at 127\\.0\\.0\\.1:${port}: no answer within (${COMMAND_TIMEOUT_MS}|1000) ms$`));
      expect(ms).toBeLessThan(1000 + 500);
      expect(timers.left()).toEqual([]);
      await waitFor('the server to see the connection closed', () => sockets.size === 0);
      expect(openSockets()).toBeLessThanOrEqual(socketsBefore);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('Redis loses data without a disconnect', () => {
  let port: number;
  let server: ChildProcess | undefined;
  let store: EphemeralStore;
  let admin: Redis;
  const states: ConnectionState[] = [];
  let dataLost = 0;
  const log: { obj: Record<string, unknown>; msg: string }[] = [];
  const lostLines = () => log.filter((line) => line.msg.startsWith('Redis lost data'));

  beforeAll(async () => {
    port = await freePort();
    server = await startRedisServer(port);
    store = await createRedisEphemeralStore({
      url: `redis://127.0.0.1:${port}`,
      keyPrefix: 'loss:',
      connectTimeoutMs: 1000,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      logger: { warn: (obj, msg) => log.push({ obj: obj as Record<string, unknown>, msg }), info: () => undefined },
    });
    await store.subscribe('invalidate', () => undefined, { onStateChange: (state) => states.push(state), onDataLost: () => (dataLost += 1) });
    // The test's own connection to its own server, to lose data behind the store's back.
    admin = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true });
    await admin.connect();
  });
  afterAll(async () => {
    admin?.disconnect();
    await store?.close();
    await killRedisServer(server);
  });

  /** Waits (generously) for the store to report data lost, n times in all; returns that report. */
  async function lost(n: number) {
    await waitFor(`report #${n} of lost data`, () => lostLines().length >= n, 10_000);
    return lostLines()[n - 1]!;
  }

  it('a FLUSHALL: subscribers hear that data was lost, with the default heartbeat; the connection never dropped', async () => {
    await store.set('session', 'v', { ttlMs: 60_000 });
    await admin.flushall();
    expect((await lost(1)).obj.reason).toMatch(/data is gone/);
    expect(dataLost).toBe(1);
    expect(states).toEqual([]);
    expect(await store.get('session')).toBeNull();
  });

  it('a marker holding an older value (a server restored from an older snapshot)', async () => {
    await lost(1);
    const [marker] = await admin.keys(`loss:${MARKER_KEY_PREFIX}*`);
    const current = await admin.get(marker!);
    await admin.set(marker!, current!.replace(/:\d+$/, ':0'), 'PX', 60_000);
    expect((await lost(2)).obj.reason).toMatch(/older data/);
    expect(dataLost).toBe(2);
  });

  it('an eviction', async () => {
    await lost(2);
    await admin.config('SET', 'maxmemory-policy', 'allkeys-random');
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    await admin.config('SET', 'maxmemory', String(used + 256 * 1024));
    const filler = 'x'.repeat(10_000);
    for (let i = 0; i < 100; i++) await admin.set(`filler:${i}`, filler).catch(() => undefined);
    await admin.config('SET', 'maxmemory', '0');
    expect((await lost(3)).obj.reason).toMatch(/evicted|data is gone/);
    expect(dataLost).toBeGreaterThanOrEqual(3); // (the heartbeat may see the evictions in more than one check)
    expect(states).toEqual([]);
  });

  it('nothing lost, nothing reported', async () => {
    const [marker] = await admin.keys(`loss:${MARKER_KEY_PREFIX}*`);
    const sequence = async () => Number((await admin.get(marker!))!.split(':').at(-1));
    const heartbeats = async (n: number) => {
      const start = await sequence();
      const deadline = Date.now() + 10_000;
      while ((await sequence()) < start + n) {
        if (Date.now() > deadline) throw new Error('the heartbeat did not advance the marker');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    await heartbeats(2); // past the checks that may still see the evictions above
    const reports = lostLines().length;
    const heard = dataLost;
    await heartbeats(3);
    expect(lostLines().length).toBe(reports);
    expect(dataLost).toBe(heard);
  });
});
