// The Redis ephemeral store: its factory and the key-value operations. Its parts: connection.ts
// (options, reconnection, errors), lua-scripts.ts (atomic multi-step writes), subscriptions.ts
// (pub/sub), heartbeat.ts and stall-watchdog.ts (finding a Redis that stopped answering).
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { CounterResult, EphemeralStore, SetOptions } from '../ephemeral/ephemeral-store.ts';
import { createTurnBatches } from '../../shared/turn-batches.ts';
import {
  baseRedisOptions,
  clusterOptions,
  connectFirst,
  describeCluster,
  describeSentinelMaster,
  describeServer,
  openConnection,
  probeSentinels,
  sentinelOptions,
  sentinelTlsOptions,
  tlsOptions,
  quit,
  run,
  type Connection,
  type RedisClient,
  type RedisContext,
  type RedisTls,
  type RoleOptions,
  type StoreLogger,
} from './connection.ts';
import { slotOfKey } from './cluster-slots.ts';
import { createClusterDataLossDetector, createDataLossDetector } from './data-loss.ts';
import { DEFAULT_HEARTBEAT_MS, startHeartbeat, type Probed } from './heartbeat.ts';
import { defineScripts, SET_ADDITIONS_PER_COMMAND } from './lua-scripts.ts';
import { createReplicatedWrites } from './replicated-writes.ts';
import { startStallWatchdog } from './stall-watchdog.ts';
import { createSubscriptions, type SubscriberSource } from './subscriptions.ts';
import type { StoreObserver } from '../store-observer.ts';

export type { RedisTls, StoreLogger } from './connection.ts';

/** Redis Sentinel: the sentinels, and the name of the master they monitor. */
export interface SentinelTarget {
  sentinels: { host: string; port: number }[];
  masterName: string;
  /** The sentinels' password, when they require one. */
  sentinelPassword?: string;
  /** The password of the master (and its replicas). */
  password?: string;
  /** The ACL user of that password. */
  username?: string;
  /** TLS to the sentinels themselves (the master's and replicas' TLS is the store's `tls`). */
  sentinelTls?: RedisTls;
}

/** Redis Cluster: seed nodes (any of its nodes; the others are learnt from them). */
export interface ClusterTarget {
  nodes: { host: string; port: number }[];
  /** The password of every node, and its ACL user. */
  password?: string;
  username?: string;
}

export interface RedisEphemeralStoreOptions {
  /**
   * redis:// or rediss:// URL; its password never appears in an error or a log line. Either this or
   * sentinel: through Sentinel, the store follows the master from failover to failover.
   */
  url?: string;
  sentinel?: SentinelTarget;
  /** A Redis Cluster instead of url or sentinel: keys are spread over its masters by hash slot. */
  cluster?: ClusterTarget;
  /**
   * TLS to Redis (with sentinel: to the master and replicas; on a cluster: to every node). A
   * rediss:// URL without it uses TLS with Node's trusted CAs.
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
  /** Told of each command's time and outcome (the metrics). */
  observe?: StoreObserver;
}

/** Where Redis is, for log lines (no credentials), and how to open the connections to it. */
interface Target {
  server: string;
  /** The commands connection: auto-pipelined, with the fail-fast options of baseRedisOptions. */
  commands(role: RoleOptions): RedisClient;
  /** Where the subscriber connects, given the commands connection. */
  subscriber(commands: RedisClient): SubscriberSource;
  /** Why a first connection failed, when ioredis does not say (RedisContext.diagnose). */
  diagnose?: () => Promise<string | null>;
}

function redisTarget({ url, sentinel, cluster, tls, connectTimeoutMs }: RedisEphemeralStoreOptions): Target {
  if ([url, sentinel, cluster].filter((where) => where !== undefined).length !== 1) {
    throw new Error('the Redis ephemeral store needs one of a URL, a Sentinel set-up or a cluster');
  }
  const base = baseRedisOptions(connectTimeoutMs);
  const serverRole = ({ connectionName, retry }: RoleOptions): RedisOptions => ({ connectionName, retryStrategy: retry });
  // A single server's subscriber is a copy of the commands connection (same server, same options).
  const duplicate = (commands: RedisClient): SubscriberSource => ({ make: (role) => (commands as Redis).duplicate(serverRole(role)), replaceWhenLost: false });
  if (url !== undefined) {
    const urlTls = tls === undefined ? {} : { tls: tlsOptions(tls) };
    return { server: describeServer(url), commands: (role) => new Redis(url, { ...base, enableAutoPipelining: true, ...serverRole(role), ...urlTls }), subscriber: duplicate };
  }
  if (sentinel !== undefined) {
    const { sentinels, masterName, sentinelPassword, password, username, sentinelTls } = sentinel;
    if (sentinels.length === 0) throw new Error('the Redis Sentinel set-up needs at least one sentinel');
    const withTls = sentinelTlsOptions(tls, sentinelTls);
    return {
      server: describeSentinelMaster(masterName, sentinels),
      commands: (role) =>
        new Redis({
          ...base,
          enableAutoPipelining: true,
          ...serverRole(role),
          // Once every sentinel was asked without reaching a master (during a failover, the old
          // one's address): the same policy, else the connection would end for good.
          sentinelRetryStrategy: role.retry,
          ...sentinelOptions(masterName, sentinels, connectTimeoutMs),
          ...withTls,
          sentinelPassword,
          password,
          username,
        }),
      subscriber: duplicate,
      diagnose: () => probeSentinels(sentinels, { ...withTls, sentinelPassword, connectTimeout: connectTimeoutMs }),
    };
  }
  const { nodes, password, username } = cluster!;
  if (nodes.length === 0) throw new Error('the Redis Cluster set-up needs at least one node');
  // Every node's connection (and the subscriber's): the fail-fast options, the credentials, TLS.
  const nodeOptions: RedisOptions = {
    ...base,
    ...(password === undefined ? {} : { password }),
    ...(username === undefined ? {} : { username }),
    ...(tls === undefined ? {} : { tls: tlsOptions(tls) }),
  };
  let nextNode = 0;
  return {
    server: describeCluster(nodes),
    commands: (role) =>
      new Cluster(nodes, {
        ...clusterOptions({ ...nodeOptions, connectionName: role.connectionName }, connectTimeoutMs),
        enableAutoPipelining: true,
        clusterRetryStrategy: role.retry,
      }),
    // Classic pub/sub on a cluster: a message published on any node reaches every node's
    // subscribers. Each new subscriber goes to the next of the masters known now (or of the seeds).
    subscriber: (commands) => ({
      make: (role) => {
        const masters = (commands as Cluster).nodes('master').filter((node) => node.status === 'ready').map(({ options }) => ({ host: options.host, port: options.port }));
        const candidates = masters.length > 0 ? masters : nodes;
        const { host, port } = candidates[nextNode++ % candidates.length]!;
        return new Redis({ ...nodeOptions, host, port, ...serverRole(role) });
      },
      replaceWhenLost: true,
    }),
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
    ...(options.observe ? { observe: options.observe } : {}),
  };
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  let closed: Promise<void> | null = null;

  // Auto-pipelining: the commands of one tick go out in one write; on the token path the syscalls
  // cost more than Redis does.
  const commands = openConnection(context, 'commands', (role) => target.commands(role));
  const commandsClient = commands.client;
  const scripted = defineScripts(commandsClient);
  await connectFirst(context, commands);

  // Writes that end a credential wait for a replica, on a connection of their own.
  const replicatedConnection = openConnection(context, 'replicated-writes', (role) => target.commands(role));
  try {
    await connectFirst(context, replicatedConnection);
  } catch (error) {
    await quit(commandsClient, commandTimeoutMs);
    throw error;
  }
  const replicated = createReplicatedWrites(context, replicatedConnection, Math.max(1, Math.floor(commandTimeoutMs / 2)));
  // A Cluster client connects to a node on its first command, which fails meanwhile (no offline
  // queue): its masters are connected now, and the heartbeat keeps every node connected.
  const replicatedClient = replicatedConnection.client;
  if (replicatedClient instanceof Cluster) {
    await Promise.all(replicatedClient.nodes('master').map((node) => (node.status === 'wait' ? node.connect().catch(() => undefined) : undefined)));
  }

  const k = (key: string) => keyPrefix + key;
  /**
   * On a cluster, a channel's messages all go through one node, the master of the channel's slot
   * (PUBLISH names no key: ioredis would pick a node at random, and two messages sent to two nodes
   * may reach a subscriber out of order). Elsewhere, the commands connection.
   */
  const publisher = (channel: string): RedisClient => {
    if (!(commandsClient instanceof Cluster)) return commandsClient;
    const master = commandsClient.slots[slotOfKey(channel)]?.[0];
    return commandsClient.nodes('master').find(({ options }) => `${options.host}:${options.port}` === master) ?? commandsClient;
  };
  const runCommand = <T>(operation: string, send: () => Promise<T>) => run(context, operation, commands, send);

  // Index additions (a token into its grant's and client's sets) are many per second to few sets:
  // those of one turn of the event loop go out as one SADD per set.
  const queueSetAddition = createTurnBatches<{ member: string; ttlMs: number }>(async (key, additions) => {
    const ttlMs = Math.max(...additions.map((addition) => addition.ttlMs));
    await runCommand('addToSet', () => scripted.tesseraAddToSet(key, String(ttlMs), ...additions.map((addition) => addition.member)));
  }, SET_ADDITIONS_PER_COMMAND);

  const subscriptions = createSubscriptions(context, target.subscriber(commandsClient), keyPrefix);
  // Data lost (without a disconnect, or across a restart): subscribers drop what they cached.
  const onLost = (reason: string) => {
    context.logger.warn({ redis: context.server, reason }, 'Redis lost data; dropping what was cached from it');
    subscriptions.dataLost();
  };
  const dataLoss = commandsClient instanceof Cluster ? createClusterDataLossDetector(context, commandsClient, scripted, keyPrefix, onLost) : createDataLossDetector(context, scripted, keyPrefix, onLost);
  // On a cluster, each node's connection is watched as a server of its own.
  const nodeConnections = new WeakMap<Redis, Connection<Redis>>();
  const nodeConnection = (node: Redis): Connection<Redis> => {
    let connection = nodeConnections.get(node);
    if (!connection) {
      connection = { role: 'commands', client: node, everReady: true, outageReported: false, lastError: null, heartbeatInFlight: false };
      nodeConnections.set(node, connection);
    }
    return connection;
  };
  /** The servers behind a connection: a Cluster client's nodes, or the one server. */
  const serversOf = (client: RedisClient): Redis[] => (client instanceof Cluster ? client.nodes('all') : [client]);
  const servers = async (): Promise<Redis[]> => {
    const subscriber = await subscriptions.connection();
    const own = [commandsClient, replicatedClient].flatMap(serversOf);
    return subscriber ? [...own, subscriber.client] : own;
  };
  // A single server's connection is probed as itself; a Cluster client through each of its nodes
  // (the commands client also as itself: its probe is the data-loss check of every master).
  const probed = async (): Promise<Probed[]> => {
    const subscriber = await subscriptions.connection();
    const nodes = [commandsClient, replicatedClient].filter((client) => client instanceof Cluster).flatMap(serversOf).map((node) => ({ connection: nodeConnection(node) }));
    const replicatedOwn = replicatedClient instanceof Cluster ? [] : [{ connection: replicatedConnection }];
    return [{ connection: commands, probe: () => dataLoss.check() }, ...replicatedOwn, ...nodes, ...(subscriber ? [{ connection: subscriber }] : [])];
  };
  const stallWatchdog = startStallWatchdog(servers, commandTimeoutMs);
  await dataLoss.check().catch(() => undefined); // the first markers; the heartbeat checks them from now on
  const heartbeat = startHeartbeat(context, probed, heartbeatMs);

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
      const reply = durable
        ? await replicated.run<string | null>('SET', k(key), (pipeline) => (onlyIfAbsent ? pipeline.set(k(key), value, 'PX', ttlMs, 'NX') : pipeline.set(k(key), value, 'PX', ttlMs)))
        : await runCommand('SET', () => (onlyIfAbsent ? commandsClient.set(k(key), value, 'PX', ttlMs, 'NX') : commandsClient.set(k(key), value, 'PX', ttlMs)));
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
      return replicated.run<number>('DEL', k(keys[0]!), (pipeline) => pipeline.del(...keys.map(k)));
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
      await runCommand('PUBLISH', () => publisher(k(channel)).publish(k(channel), message));
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
