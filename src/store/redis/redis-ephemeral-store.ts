// The Redis ephemeral store: its factory and the key-value operations. Its parts: connection.ts
// (options, reconnection, errors), lua-scripts.ts (atomic multi-step writes), subscriptions.ts
// (pub/sub), heartbeat.ts and stall-watchdog.ts (finding a Redis that stopped answering).
import { Redis, type RedisOptions } from 'ioredis';
import type { CounterResult, EphemeralStore, SetOptions } from '../ephemeral/ephemeral-store.ts';
import { createTurnBatches } from '../../shared/turn-batches.ts';
import { baseRedisOptions, connectFirst, describeSentinelMaster, describeServer, openConnection, probeSentinels, sentinelOptions, sentinelTlsOptions, tlsOptions, quit, run, type Connection, type RedisContext, type RedisTls, type StoreLogger } from './connection.ts';
import { createDataLossDetector } from './data-loss.ts';
import { DEFAULT_HEARTBEAT_MS, startHeartbeat } from './heartbeat.ts';
import { defineScripts, SET_ADDITIONS_PER_COMMAND } from './lua-scripts.ts';
import { createReplicatedWrites } from './replicated-writes.ts';
import { startStallWatchdog } from './stall-watchdog.ts';
import { createSubscriptions } from './subscriptions.ts';

export type { RedisTls, StoreLogger } from './connection.ts';

/** Redis Sentinel: the sentinels, and the name of the master they monitor. */
export interface SentinelTarget {
  sentinels: { host: string; port: number }[];
  masterName: string;
  /** The sentinels' password, when they require one. */
  sentinelPassword?: string;
  /** The password of the master (and its replicas). */
  password?: string;
  /** TLS to the sentinels themselves (the master's and replicas' TLS is the store's `tls`). */
  sentinelTls?: RedisTls;
}

export interface RedisEphemeralStoreOptions {
  /**
   * redis:// or rediss:// URL; its password never appears in an error or a log line. Either this or
   * sentinel: through Sentinel, the store follows the master from failover to failover.
   */
  url?: string;
  sentinel?: SentinelTarget;
  /**
   * TLS to Redis (with sentinel: to the master and replicas). A rediss:// URL without it uses TLS
   * with Node's trusted CAs.
   */
  tls?: RedisTls;
  /** Put in front of every key and channel; must not contain braces (they would break hash tags). */
  keyPrefix: string;
  /** How long the first connection (and each later TCP connect) may take. */
  connectTimeoutMs: number;
  /** How long any command may wait for its reply before it fails: no request hangs on Redis. */
  commandTimeoutMs: number;
  /**
   * How often each connection is pinged to find one that is dead, and Redis checked for data it
   * lost without a disconnect (heartbeat.ts, data-loss.ts). Default 1000.
   */
  heartbeatMs?: number;
  logger?: StoreLogger;
}

interface RedisTarget {
  server: string;
  connect: (redisOptions: RedisOptions) => Redis;
  /** Why a first connection failed, when ioredis does not say (RedisContext.diagnose). */
  diagnose?: () => Promise<string | null>;
}

/** Where Redis is, for log lines (no credentials), and how to open a connection to it. */
function redisTarget({ url, sentinel, tls, connectTimeoutMs }: RedisEphemeralStoreOptions): RedisTarget {
  if ((url === undefined) === (sentinel === undefined)) throw new Error('the Redis ephemeral store needs either a URL or a Sentinel set-up, not both');
  if (url !== undefined) {
    const urlTls = tls === undefined ? {} : { tls: tlsOptions(tls) };
    return { server: describeServer(url), connect: (redisOptions) => new Redis(url, { ...redisOptions, ...urlTls }) };
  }
  const { sentinels, masterName, sentinelPassword, password, sentinelTls } = sentinel!;
  if (sentinels.length === 0) throw new Error('the Redis Sentinel set-up needs at least one sentinel');
  const withTls = sentinelTlsOptions(tls, sentinelTls);
  return {
    server: describeSentinelMaster(masterName, sentinels),
    connect: (redisOptions) => new Redis({ ...redisOptions, ...sentinelOptions(masterName, sentinels, connectTimeoutMs), ...withTls, sentinelPassword, password }),
    diagnose: () => probeSentinels(sentinels, { ...withTls, sentinelPassword, connectTimeout: connectTimeoutMs }),
  };
}

/** RedisContext.clientCertificate: whether the TLS connections (if any) present a client certificate. */
function clientCertificate({ tls, sentinel }: RedisEphemeralStoreOptions): { clientCertificate?: boolean } {
  const settings = [tls, sentinel?.sentinelTls].filter((each) => each !== undefined);
  return settings.length === 0 ? {} : { clientCertificate: settings.every((each) => each.cert !== undefined) };
}

function assertTtl(ttlMs: number, what: string): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`${what} must be a positive whole number of milliseconds, got ${ttlMs}`);
  }
}

/**
 * Resolves once Redis answered; rejects with "cannot reach Redis at host:port: REASON" otherwise,
 * leaving nothing open. Once open, a command fails at once while Redis is away (or after
 * commandTimeoutMs when it stops answering) and the connections reconnect in the background.
 */
export async function createRedisEphemeralStore(options: RedisEphemeralStoreOptions): Promise<EphemeralStore> {
  const { keyPrefix, commandTimeoutMs } = options;
  if (keyPrefix.includes('{') || keyPrefix.includes('}')) {
    throw new Error('the Redis key prefix must not contain braces: they would break the hash tags of keys');
  }
  assertTtl(options.connectTimeoutMs, 'connectTimeoutMs');
  assertTtl(commandTimeoutMs, 'commandTimeoutMs');
  const target = redisTarget(options);
  const context: RedisContext = {
    server: target.server,
    connectTimeoutMs: options.connectTimeoutMs,
    commandTimeoutMs,
    logger: options.logger ?? { warn() {}, info() {} },
    closing: false,
    ...(target.diagnose ? { diagnose: target.diagnose } : {}),
    ...clientCertificate(options),
  };
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  let closed: Promise<void> | null = null;

  // Auto-pipelining: the commands of one tick go out in one write; on the token path the syscalls
  // cost more than Redis does.
  const commands = openConnection(context, 'commands', (roleOptions) => target.connect({ ...baseRedisOptions(options.connectTimeoutMs), enableAutoPipelining: true, ...roleOptions }));
  const commandsClient = commands.client;
  const scripted = defineScripts(commandsClient);
  await connectFirst(context, commands);

  // Writes that end a credential wait for a replica, on a connection of their own.
  const replicatedConnection = openConnection(context, 'replicated-writes', (roleOptions) => target.connect({ ...baseRedisOptions(options.connectTimeoutMs), ...roleOptions }));
  try {
    await connectFirst(context, replicatedConnection);
  } catch (error) {
    await quit(commandsClient, commandTimeoutMs);
    throw error;
  }
  const replicated = createReplicatedWrites(context, replicatedConnection, Math.max(1, Math.floor(commandTimeoutMs / 2)));
  await replicated.probe().catch(() => undefined); // the heartbeat keeps it current from now on

  const k = (key: string) => keyPrefix + key;
  const runCommand = <T>(operation: string, send: () => Promise<T>) => run(context, operation, commands, send);

  // Index additions (a token into its grant's and client's sets) are many per second to few sets:
  // those of one turn of the event loop go out as one SADD per set.
  const queueSetAddition = createTurnBatches<{ member: string; ttlMs: number }>(async (key, additions) => {
    const ttlMs = Math.max(...additions.map((addition) => addition.ttlMs));
    await runCommand('addToSet', () => scripted.tesseraAddToSet(key, String(ttlMs), ...additions.map((addition) => addition.member)));
  }, SET_ADDITIONS_PER_COMMAND);

  const subscriptions = createSubscriptions(context, commands, keyPrefix);
  const connections = async (): Promise<Connection[]> => {
    const subscriber = await subscriptions.connection();
    return subscriber ? [commands, replicatedConnection, subscriber] : [commands, replicatedConnection];
  };
  const stallWatchdog = startStallWatchdog(connections, commandTimeoutMs);
  // Data lost (without a disconnect, or across a restart): subscribers drop what they cached.
  const dataLoss = createDataLossDetector(context, scripted, keyPrefix, (reason) => {
    context.logger.warn({ redis: context.server, reason }, 'Redis lost data; dropping what was cached from it');
    subscriptions.dataLost();
  });
  await dataLoss.check().catch(() => undefined); // the first marker; the heartbeat checks it from now on
  const heartbeat = startHeartbeat(context, connections, heartbeatMs, { commands: () => dataLoss.check(), 'replicated-writes': () => replicated.probe() });

  return {
    kind: 'redis',

    get(key) {
      return runCommand('GET', () => commandsClient.get(k(key)));
    },

    async getMany(keys) {
      if (keys.length === 0) return [];
      return runCommand('MGET', () => commandsClient.mget(...keys.map(k)));
    },

    async set(key: string, value: string, { ttlMs, onlyIfAbsent, durable }: SetOptions) {
      assertTtl(ttlMs, 'ttlMs');
      const send = (client: typeof commandsClient) => (onlyIfAbsent ? client.set(k(key), value, 'PX', ttlMs, 'NX') : client.set(k(key), value, 'PX', ttlMs));
      const fallback = () => runCommand('SET', () => send(commandsClient));
      const reply = durable ? await replicated.run('SET', send, fallback) : await fallback();
      return reply === 'OK';
    },

    getDel(key) {
      return runCommand('GETDEL', () => commandsClient.getdel(k(key)));
    },

    async del(...keys) {
      if (keys.length === 0) return 0;
      return runCommand('DEL', () => commandsClient.del(...keys.map(k)));
    },

    async delDurably(...keys) {
      if (keys.length === 0) return 0;
      return replicated.run('DEL', (client) => client.del(...keys.map(k)), () => runCommand('DEL', () => commandsClient.del(...keys.map(k))));
    },

    async expire(key, ttlMs) {
      assertTtl(ttlMs, 'ttlMs');
      return (await runCommand('PEXPIRE', () => commandsClient.pexpire(k(key), ttlMs))) === 1;
    },

    async ttl(key) {
      const ttl = await runCommand('PTTL', () => commandsClient.pttl(k(key)));
      if (ttl === -2) return null;
      return ttl === -1 ? Number.POSITIVE_INFINITY : ttl;
    },

    async increment(key, windowMs): Promise<CounterResult> {
      assertTtl(windowMs, 'windowMs');
      const [count, ttlMs] = await runCommand('increment', () => scripted.tesseraIncrement(k(key), String(windowMs)));
      return { count, ttlMs };
    },

    async setIfAbsentAlongside(key, value, companion, marginMs) {
      assertTtl(marginMs, 'marginMs');
      return runCommand('setIfAbsentAlongside', () => scripted.tesseraSetIfAbsentAlongside(k(key), k(companion), value, String(marginMs)));
    },

    async setWithCompanion(key, value, ttlMs, companion) {
      assertTtl(ttlMs, 'ttlMs');
      assertTtl(companion.ttlMs, 'companion.ttlMs');
      const extra = companion.value === undefined ? [] : [companion.value];
      await runCommand('setWithCompanion', () => scripted.tesseraSetWithCompanion(k(key), k(companion.key), value, String(ttlMs), String(companion.ttlMs), ...extra));
    },

    async addToSet(key, member, ttlMs) {
      assertTtl(ttlMs, 'ttlMs');
      if (context.closing) throw new Error('the Redis ephemeral store is closed (addToSet)');
      await queueSetAddition(k(key), { member, ttlMs });
    },

    setMembers(key) {
      return runCommand('SMEMBERS', () => commandsClient.smembers(k(key)));
    },

    async removeFromSet(key, member) {
      await runCommand('SREM', () => commandsClient.srem(k(key), member));
    },

    async publish(channel, message) {
      await runCommand('PUBLISH', () => commandsClient.publish(k(channel), message));
    },

    subscribe(channel, handler, subscribeOptions) {
      return subscriptions.subscribe(channel, handler, subscribeOptions);
    },

    async ping() {
      await runCommand('PING', () => commandsClient.ping());
    },

    close() {
      closed ??= (async () => {
        context.closing = true;
        clearInterval(heartbeat);
        clearInterval(stallWatchdog);
        const subscriber = await subscriptions.connection();
        await Promise.all([commands, replicatedConnection, ...(subscriber ? [subscriber] : [])].map(({ client }) => quit(client, commandTimeoutMs)));
      })();
      return closed;
    },
  };
}
