import type { Socket } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import type { ConnectionState, CounterResult, EphemeralStore, SetOptions, SubscribeOptions, Subscription } from '../ephemeral/ephemeral-store.ts';
import { createTurnBatches } from '../../shared/turn-batches.ts';

export interface StoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface RedisEphemeralStoreOptions {
  /** redis:// or rediss:// URL; its password never appears in an error or a log line. */
  url: string;
  /** Put in front of every key and channel; must not contain braces (they would break hash tags). */
  keyPrefix: string;
  /** How long the first connection (and each later TCP connect) may take. */
  connectTimeoutMs: number;
  /** How long any command may wait for its reply before it fails: no request hangs on Redis. */
  commandTimeoutMs: number;
  /**
   * How often each connection is pinged. A ping that times out means the connection is dead
   * without the socket knowing (a frozen server, a dropped network path): the connection is then
   * torn down and re-established, so a subscriber learns that it missed messages. Default 5000.
   */
  heartbeatMs?: number;
  logger?: StoreLogger;
}

// A fixed window counter: the first increment opens the window. A counter found without a TTL
// (never written by this store, but it would lock a client out for ever) gets one as well.
const INCREMENT_LUA = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`;

// Adds members (ARGV[2..]) and makes the set live at least ARGV[1] more milliseconds, never
// shortening it.
const ADD_TO_SET_LUA = `
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
`;

/** At most this many members go into one SADD (Lua's unpack has a stack limit of about 8,000). */
const SET_ADDITIONS_PER_COMMAND = 1000;

// A value and its companion in one step: the companion is written (NX) when ARGV[4] is given, and
// otherwise, or when it existed already, only re-timed.
const SET_WITH_COMPANION_LUA = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if #ARGV >= 4 and redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[3], 'NX') then return 1 end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`;

// The consumed marker beside its payload: written once, and only while the payload exists, to live
// as long as the payload plus a margin. (A payload without a TTL, which this store never writes,
// gives the marker the margin alone.)
const SET_IF_ABSENT_ALONGSIDE_LUA = `
local remaining = redis.call('PTTL', KEYS[2])
if remaining == -2 then return 'missing' end
if remaining < 0 then remaining = 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', remaining + tonumber(ARGV[2]), 'NX') then return 'written' end
return 'exists'
`;

interface ScriptedCommands {
  tesseraSetIfAbsentAlongside(key: string, companion: string, value: string, marginMs: string): Promise<'written' | 'exists' | 'missing'>;
  tesseraIncrement(key: string, windowMs: string): Promise<[number, number]>;
  tesseraAddToSet(key: string, ttlMs: string, ...members: string[]): Promise<number>;
  tesseraSetWithCompanion(key: string, companion: string, value: string, ttlMs: string, companionTtlMs: string, companionValue?: string): Promise<number>;
}

/** Reconnection back-off: 50 ms, doubling, at most 1 s; it never gives up. */
function reconnectDelay(attempt: number): number {
  return Math.min(1000, 50 * 2 ** Math.min(attempt - 1, 5));
}

/**
 * How long ioredis lets a socket it ends take to close before destroying it. The default (2 s)
 * only delays things here: close() ends sockets whose state no longer matters, and a heartbeat
 * that timed out ends a socket precisely because it is dead.
 */
const DISCONNECT_TIMEOUT_MS = 20;

const DEFAULT_HEARTBEAT_MS = 5000;

type Role = 'commands' | 'subscriber';

interface Connection {
  readonly role: Role;
  readonly client: Redis;
  /** Set once the first connection succeeded; before that, a failure is final (the caller is told). */
  everReady: boolean;
  /** True while an outage has been logged and the 'restored' line is owed. */
  outageReported: boolean;
  lastError: string | null;
  heartbeatInFlight: boolean;
}

interface Listener {
  handler: (message: string) => void;
  onStateChange: ((state: ConnectionState) => void) | undefined;
}

/** Errors from Node's sockets may come from another realm (a test VM): no instanceof here. */
function errorText(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (typeof code === 'string') return code;
    if (typeof message === 'string') return message;
  }
  return String(error);
}

/** ioredis' ways of saying that a command was not sent, or lost with its connection. */
const CONNECTION_LOST = /Stream isn't writeable|Connection is closed|Reached the max retries per request limit|Command aborted due to connection close/;

function assertTtl(ttlMs: number, what: string): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`${what} must be a positive whole number of milliseconds, got ${ttlMs}`);
  }
}

/** Where Redis is, as host:port: enough to find it, without the credentials of the URL. */
function describeServer(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('the Redis URL is not a valid URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`the Redis URL must start with redis:// or rediss://, not ${parsed.protocol}//`);
  }
  return `${parsed.hostname}:${parsed.port || '6379'}`;
}

/** Resolves when the socket has closed, or after ms (then the caller destroys it). */
function socketClosed(stream: Socket | undefined, ms: number): Promise<void> {
  if (!stream || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    stream.once('close', done);
    function done() {
      clearTimeout(timer);
      stream!.removeListener('close', done);
      resolve();
    }
  });
}

/**
 * Ends a connection at once, whatever state it is in, and returns when it holds nothing open:
 * no socket, no reconnection timer, no disconnect timer.
 */
async function endConnection(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'wait') {
    client.disconnect();
    return;
  }
  const stream = client.stream as Socket | undefined;
  const streamOpen = stream !== undefined && !stream.destroyed;
  // disconnect() clears a pending reconnection and ends the socket, arming a timer of
  // DISCONNECT_TIMEOUT_MS that the socket's 'close' clears. A socket already closed (the
  // connection was between attempts) never closes again, so that timer runs out: wait for it,
  // created after it with the same duration, so that nothing is left behind.
  client.disconnect();
  if (streamOpen) {
    await socketClosed(stream, DISCONNECT_TIMEOUT_MS * 5);
  } else {
    await new Promise((resolve) => setTimeout(resolve, DISCONNECT_TIMEOUT_MS));
  }
}

/**
 * The Redis ephemeral store. Commands never queue while Redis is away: they fail at once (or
 * after commandTimeoutMs when a server stops answering) with a message naming the server, and
 * the connections keep reconnecting in the background, so the service recovers by itself.
 *
 * Resolves once Redis answered; rejects with "cannot reach Redis at host:port: REASON" otherwise,
 * leaving nothing open behind it.
 */
export async function createRedisEphemeralStore(options: RedisEphemeralStoreOptions): Promise<EphemeralStore> {
  const { keyPrefix, commandTimeoutMs } = options;
  if (keyPrefix.includes('{') || keyPrefix.includes('}')) {
    throw new Error('the Redis key prefix must not contain braces: they would break the hash tags of keys');
  }
  assertTtl(options.connectTimeoutMs, 'connectTimeoutMs');
  assertTtl(commandTimeoutMs, 'commandTimeoutMs');
  const server = describeServer(options.url);
  const logger: StoreLogger = options.logger ?? { warn() {}, info() {} };
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const reasonOf = (error: unknown) => {
    const text = errorText(error);
    return text === 'Command timed out' ? `no answer within ${commandTimeoutMs} ms` : text;
  };

  let closing = false;
  let closed: Promise<void> | null = null;

  const baseOptions: RedisOptions = {
    lazyConnect: true,
    // Fail instead of queueing while disconnected: a request never waits for Redis to return.
    enableOfflineQueue: false,
    // A command whose reply is lost with its connection is never sent again: Redis may have run
    // it already, and running INCR or GETDEL twice is wrong. So it fails as the connection drops
    // (0: no retry). With 1 it would wait for the next failed reconnection attempt, or, if that
    // attempt succeeded, for commandTimeout, its timer outliving close().
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: options.connectTimeoutMs,
    // No commandTimeout: it arms and clears a timer for every command. The stall watchdog below
    // fails commands left unanswered for commandTimeoutMs instead, the same way, from one timer.
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    // Subscriptions are restored by this store, which knows when that is done (see below).
    autoResubscribe: false,
  };

  /**
   * Creates a connection (not connected yet) with its reconnection policy and its logging.
   * Until it has connected once, a failure is final: connectFirst reports it to the caller.
   * Afterwards it reconnects for as long as the store is open.
   */
  function openConnection(role: Role, make: (roleOptions: RedisOptions) => Redis): Connection {
    const state = { role, everReady: false, outageReported: false, lastError: null as string | null, heartbeatInFlight: false };
    const client = make({
      connectionName: role === 'commands' ? 'tessera' : 'tessera-subscriber',
      retryStrategy: (attempt: number) => (closing || !state.everReady ? null : reconnectDelay(attempt)),
    });
    const connection: Connection = Object.assign(state, { client });
    const reportOutage = (reason: string) => {
      if (closing || !connection.everReady || connection.outageReported) return;
      connection.outageReported = true;
      logger.warn({ redis: server, connection: role, reason }, 'lost the connection to Redis; reconnecting in the background');
    };
    // Without an 'error' listener ioredis would print every failed reconnection attempt.
    client.on('error', (error: unknown) => {
      connection.lastError = reasonOf(error);
      reportOutage(connection.lastError);
    });
    client.on('close', () => reportOutage(connection.lastError ?? 'connection closed'));
    client.on('ready', () => {
      connection.lastError = null;
      if (connection.outageReported && !closing) {
        logger.info({ redis: server, connection: role }, 'reconnected to Redis');
      }
      connection.outageReported = false;
    });
    return connection;
  }

  /** Connects for the first time, within connectTimeoutMs, or ends the connection and explains. */
  async function connectFirst(connection: Connection): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const connecting = connection.client.connect();
    connecting.catch(() => undefined); // its failure is reported through the race below
    try {
      await Promise.race([
        connecting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
        }),
      ]);
      connection.everReady = true;
    } catch (error) {
      const reason = connection.lastError ?? reasonOf(error);
      await endConnection(connection.client);
      throw new Error(`cannot reach Redis at ${server}: ${reason}`);
    } finally {
      clearTimeout(timer);
    }
  }

  // Commands issued in the same tick go out in one write (one syscall instead of one each): a
  // token request issues several at once, and on this path the syscalls cost more than Redis.
  const commands = openConnection('commands', (roleOptions) => new Redis(options.url, { ...baseOptions, enableAutoPipelining: true, ...roleOptions }));
  const commandsClient = commands.client;
  commandsClient.defineCommand('tesseraIncrement', { numberOfKeys: 1, lua: INCREMENT_LUA });
  commandsClient.defineCommand('tesseraAddToSet', { numberOfKeys: 1, lua: ADD_TO_SET_LUA });
  commandsClient.defineCommand('tesseraSetIfAbsentAlongside', { numberOfKeys: 2, lua: SET_IF_ABSENT_ALONGSIDE_LUA });
  commandsClient.defineCommand('tesseraSetWithCompanion', { numberOfKeys: 2, lua: SET_WITH_COMPANION_LUA });
  const scripted = commandsClient as unknown as ScriptedCommands;
  await connectFirst(commands);

  const k = (key: string) => keyPrefix + key;

  /** Runs a command, turning ioredis errors into messages that say what happened and where. */
  async function run<T>(operation: string, connection: Connection, send: () => Promise<T>): Promise<T> {
    if (closing) throw new Error(`the Redis ephemeral store is closed (${operation})`);
    try {
      return await send();
    } catch (error) {
      throw explain(operation, connection, error);
    }
  }

  // Index additions (a token's key into its grant's and client's sets) are many per second to few
  // sets: those of one turn of the event loop go out as one SADD per set.
  const queueSetAddition = createTurnBatches<{ member: string; ttlMs: number }>(async (key, additions) => {
    const ttlMs = Math.max(...additions.map((addition) => addition.ttlMs));
    await run('addToSet', commands, () => scripted.tesseraAddToSet(key, String(ttlMs), ...additions.map((addition) => addition.member)));
  }, SET_ADDITIONS_PER_COMMAND);

  function explain(operation: string, connection: Connection, error: unknown): Error {
    const text = errorText(error);
    if ((error as { name?: unknown } | null)?.name === 'ReplyError') {
      return new Error(`Redis ${operation} failed: ${text}`, { cause: error });
    }
    if (text === 'Command timed out') {
      return new Error(`Redis at ${server} did not answer ${operation} within ${commandTimeoutMs} ms`, { cause: error });
    }
    const { status } = connection.client;
    if (status !== 'ready' || CONNECTION_LOST.test(text)) {
      const why = connection.lastError ? `${connection.lastError}, reconnecting` : status === 'ready' ? 'connection lost' : `connection ${status}`;
      return new Error(`Redis at ${server} is unavailable (${why}); ${operation} was not run`, { cause: error });
    }
    return new Error(`Redis ${operation} failed at ${server}: ${text}`, { cause: error });
  }

  // --- pub/sub: one dedicated connection, created on the first subscribe ---------------------

  const listeners = new Map<string, Set<Listener>>(); // by prefixed channel
  let subscriberConnection: Promise<Connection> | null = null;
  let subscriberUp = false;

  function notify(state: ConnectionState): void {
    for (const set of listeners.values()) {
      for (const listener of set) {
        try {
          listener.onStateChange?.(state);
        } catch (error) {
          logger.warn({ reason: errorText(error), state }, 'a subscriber failed to handle a connection state change');
        }
      }
    }
  }

  function dispatch(channel: string, message: string): void {
    const set = listeners.get(channel);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener.handler(message);
      } catch (error) {
        logger.warn({ channel: channel.slice(keyPrefix.length), reason: errorText(error) }, 'a subscriber failed to handle a message');
      }
    }
  }

  async function openSubscriber(): Promise<Connection> {
    const subscriber = openConnection('subscriber', (roleOptions) => commandsClient.duplicate(roleOptions));
    const { client } = subscriber;
    client.on('message', dispatch);
    client.on('close', () => {
      if (closing || !subscriberUp) return;
      subscriberUp = false;
      notify('down');
    });
    // ioredis' own resubscription (autoResubscribe) sends SUBSCRIBE after 'ready' without waiting
    // for (or catching) the reply; here 'up' is announced only once Redis confirmed every channel,
    // so a message published after 'up' is never missed.
    client.on('ready', () => {
      if (closing || subscriberUp || !subscriber.everReady) return;
      const channels = [...listeners.keys()];
      const resubscribed = channels.length > 0 ? client.subscribe(...channels) : Promise.resolve(0);
      resubscribed.then(
        () => {
          if (closing || subscriberUp || client.status !== 'ready') return;
          subscriberUp = true;
          notify('up');
        },
        (error: unknown) => {
          // Lost again, or the server stopped answering: the next 'ready' tries again.
          logger.warn({ redis: server, reason: reasonOf(error) }, 'could not restore the Redis subscriptions');
          if (client.status === 'ready') client.disconnect(true);
        },
      );
    });
    await connectFirst(subscriber);
    subscriberUp = true;
    return subscriber;
  }

  function subscriber(): Promise<Connection> {
    subscriberConnection ??= openSubscriber().catch((error: unknown) => {
      subscriberConnection = null; // the next subscribe tries again
      throw error;
    });
    return subscriberConnection;
  }

  // --- heartbeat: notices connections that are dead without knowing it -----------------------

  async function connections(): Promise<Connection[]> {
    const subscriberNow = subscriberConnection ? await subscriberConnection.catch(() => undefined) : undefined;
    return subscriberNow ? [commands, subscriberNow] : [commands];
  }

  // --- stall watchdog: a command unanswered for commandTimeoutMs fails ------------------------
  // Every quarter of commandTimeoutMs, the commands each connection has sent and not yet had an
  // answer to are noted with when they were first seen; one seen at least commandTimeoutMs ago is
  // rejected with "Command timed out", as ioredis's own commandTimeout does (so it waits between
  // commandTimeoutMs and 1.25 × that). Its reply, should one still come, settles nothing. A server
  // that stopped answering is then found by the heartbeat, whose PING times out the same way.
  let firstSeen = new Map<object, number>();
  const stallWatchdog = setInterval(() => {
    void connections().then((all) => {
      const now = performance.now();
      const seen = new Map<object, number>();
      for (const { client } of all) {
        const queue = client.commandQueue;
        for (let index = 0; index < queue.length; index++) {
          const item = queue.peekAt(index);
          if (!item) continue;
          const since = firstSeen.get(item) ?? now;
          if (now - since >= commandTimeoutMs) item.command.reject(new Error('Command timed out'));
          else seen.set(item, since);
        }
      }
      firstSeen = seen;
    });
  }, Math.max(1, Math.floor(commandTimeoutMs / 4)));
  stallWatchdog.unref();

  const heartbeat = setInterval(() => {
    void connections().then((all) => {
      for (const connection of all) {
        const { client } = connection;
        if (closing || client.status !== 'ready' || connection.heartbeatInFlight) continue;
        connection.heartbeatInFlight = true;
        client
          .ping()
          .catch((error: unknown) => {
            if (closing || client.status !== 'ready') return;
            connection.lastError = reasonOf(error);
            logger.warn({ redis: server, connection: connection.role, reason: connection.lastError }, 'Redis stopped answering; reconnecting');
            connection.outageReported = true;
            client.disconnect(true);
          })
          .finally(() => {
            connection.heartbeatInFlight = false;
          });
      }
    });
  }, heartbeatMs);
  heartbeat.unref();

  const store: EphemeralStore = {
    kind: 'redis',

    get(key) {
      return run('GET', commands, () => commandsClient.get(k(key)));
    },

    async getMany(keys) {
      if (keys.length === 0) return [];
      return run('MGET', commands, () => commandsClient.mget(...keys.map(k)));
    },

    async set(key: string, value: string, { ttlMs, onlyIfAbsent }: SetOptions) {
      assertTtl(ttlMs, 'ttlMs');
      const reply = await run('SET', commands, () =>
        onlyIfAbsent ? commandsClient.set(k(key), value, 'PX', ttlMs, 'NX') : commandsClient.set(k(key), value, 'PX', ttlMs),
      );
      return reply === 'OK';
    },

    getDel(key) {
      return run('GETDEL', commands, () => commandsClient.getdel(k(key)));
    },

    async del(...keys) {
      if (keys.length === 0) return 0;
      return run('DEL', commands, () => commandsClient.del(...keys.map(k)));
    },

    async expire(key, ttlMs) {
      assertTtl(ttlMs, 'ttlMs');
      return (await run('PEXPIRE', commands, () => commandsClient.pexpire(k(key), ttlMs))) === 1;
    },

    async ttl(key) {
      const ttl = await run('PTTL', commands, () => commandsClient.pttl(k(key)));
      if (ttl === -2) return null;
      return ttl === -1 ? Number.POSITIVE_INFINITY : ttl;
    },

    async increment(key, windowMs): Promise<CounterResult> {
      assertTtl(windowMs, 'windowMs');
      const [count, ttlMs] = await run('increment', commands, () => scripted.tesseraIncrement(k(key), String(windowMs)));
      return { count, ttlMs };
    },

    async setIfAbsentAlongside(key, value, companion, marginMs) {
      assertTtl(marginMs, 'marginMs');
      return run('setIfAbsentAlongside', commands, () => scripted.tesseraSetIfAbsentAlongside(k(key), k(companion), value, String(marginMs)));
    },

    async setWithCompanion(key, value, ttlMs, companion) {
      assertTtl(ttlMs, 'ttlMs');
      assertTtl(companion.ttlMs, 'companion.ttlMs');
      const extra = companion.value === undefined ? [] : [companion.value];
      await run('setWithCompanion', commands, () => scripted.tesseraSetWithCompanion(k(key), k(companion.key), value, String(ttlMs), String(companion.ttlMs), ...extra));
    },

    async addToSet(key, member, ttlMs) {
      assertTtl(ttlMs, 'ttlMs');
      if (closing) throw new Error('the Redis ephemeral store is closed (addToSet)');
      await queueSetAddition(k(key), { member, ttlMs });
    },

    setMembers(key) {
      return run('SMEMBERS', commands, () => commandsClient.smembers(k(key)));
    },

    async removeFromSet(key, member) {
      await run('SREM', commands, () => commandsClient.srem(k(key), member));
    },

    async publish(channel, message) {
      await run('PUBLISH', commands, () => commandsClient.publish(k(channel), message));
    },

    async subscribe(channel: string, handler: (message: string) => void, subscribeOptions?: SubscribeOptions): Promise<Subscription> {
      if (closing) throw new Error('the Redis ephemeral store is closed (SUBSCRIBE)');
      const connection = await subscriber();
      if (!subscriberUp) {
        throw new Error(`Redis at ${server} is unavailable (${connection.lastError ?? 'reconnecting'}); SUBSCRIBE was not run`);
      }
      const fullChannel = k(channel);
      const listener: Listener = { handler, onStateChange: subscribeOptions?.onStateChange };
      const set = listeners.get(fullChannel) ?? new Set<Listener>();
      listeners.set(fullChannel, set);
      set.add(listener);
      const forget = () => {
        set.delete(listener);
        if (set.size === 0 && listeners.get(fullChannel) === set) listeners.delete(fullChannel);
      };
      try {
        // Sent even when the channel is already subscribed: once it answers, Redis delivers.
        await run('SUBSCRIBE', connection, () => connection.client.subscribe(fullChannel));
      } catch (error) {
        forget();
        throw error;
      }
      let active = true;
      return {
        async close() {
          if (!active) return;
          active = false;
          forget();
          if (listeners.has(fullChannel) || closing || connection.client.status !== 'ready') return;
          // Best effort: if the connection is lost meanwhile, the channel is not restored anyway.
          await connection.client.unsubscribe(fullChannel).catch(() => undefined);
        },
      };
    },

    async ping() {
      await run('PING', commands, () => commandsClient.ping());
    },

    close() {
      closed ??= (async () => {
        closing = true;
        clearInterval(heartbeat);
        clearInterval(stallWatchdog);
        const subscriberNow = subscriberConnection ? await subscriberConnection.catch(() => undefined) : undefined;
        await Promise.all([commands, ...(subscriberNow ? [subscriberNow] : [])].map(({ client }) => quit(client)));
      })();
      return closed;
    },
  };
  return store;

  /** QUIT when connected (Redis answers and closes the socket), otherwise end the connection now. */
  async function quit(client: Redis): Promise<void> {
    if (client.status === 'ready') {
      const stream = client.stream as Socket | undefined;
      try {
        await client.quit();
        await socketClosed(stream, commandTimeoutMs);
      } catch {
        // fall through: the connection is ended below
      }
    }
    await endConnection(client);
  }
}
