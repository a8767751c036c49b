// A connection to Redis for the ephemeral store: options, reconnection, logging of outages, and
// errors that say what failed and where. Commands never queue while Redis is away: they fail at once.
import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../../shared/errors.ts';
import type { StoreObserver } from '../store-observer.ts';

export interface StoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** What the store's parts share: where Redis is, the limits, the logger, whether it is closing. */
export interface RedisContext {
  /** host:port, without the URL's credentials. */
  readonly server: string;
  readonly connectTimeoutMs: number;
  readonly commandTimeoutMs: number;
  readonly logger: StoreLogger;
  closing: boolean;
  /**
   * Why the first connection failed, when ioredis' own error hides it (through Sentinel, a
   * sentinel it could not talk to is only "Connection is closed"): asked once, on that failure.
   */
  readonly diagnose?: () => Promise<string | null>;
  /**
   * Over TLS, whether a client certificate is given (undefined without TLS): a server that wants
   * one, or does not trust the one given, often just closes the connection (ECONNRESET).
   */
  readonly clientCertificate?: boolean;
  /** Told of each command's time and outcome (the metrics); undefined: nothing is timed. */
  readonly observe?: StoreObserver;
}

/** The commands connection, the pub/sub subscriber, and the writes that wait for a replica (replicated-writes.ts). */
export type Role = 'commands' | 'subscriber' | 'replicated-writes';

/** One server's connection, or a Redis Cluster client (the commands connection on a cluster). */
export type RedisClient = Redis | Cluster;

export interface Connection<Client extends RedisClient = RedisClient> {
  readonly role: Role;
  readonly client: Client;
  /** Set once the first connection succeeded; before that, a failure is final (the caller is told). */
  everReady: boolean;
  /** True while an outage has been logged and the 'restored' line is owed. */
  outageReported: boolean;
  lastError: string | null;
  heartbeatInFlight: boolean;
}

/** Reconnection back-off: 50 ms, doubling, at most 1 s; it never gives up. */
export function reconnectDelay(attempt: number): number {
  return Math.min(1000, 50 * 2 ** Math.min(attempt - 1, 5));
}

/**
 * How long ioredis lets a socket it ends take to close before destroying it. Short: the sockets
 * ended here are either no longer needed or dead (the default of 2 s only delays close()).
 */
const DISCONNECT_TIMEOUT_MS = 20;

/** ioredis' ways of saying that a command was not sent, or lost with its connection. */
const CONNECTION_LOST = /Stream isn't writeable|Connection is closed|Reached the max retries per request limit|Command aborted due to connection close|Cluster isn't ready|Too many Cluster redirections|Cluster is ended/;

/**
 * Replies by which a cluster says that it did not run a command for now: no master for the slot
 * (during a failover), keys being migrated, a replica still loading.
 */
const CLUSTER_UNAVAILABLE = /^(CLUSTERDOWN|TRYAGAIN|MASTERDOWN|LOADING|MOVED|ASK)\b/;

/** A cluster node's answer that the command's slot is served elsewhere: the node did not run it. */
const REDIRECTION = /^(MOVED|ASK) /;

/** How many times run() sends a command again after a redirection (as ioredis' maxRedirections). */
const MAX_REDIRECTIONS = 16;

/** The options of every connection (docs/design/redis-store.md says why). */
export function baseRedisOptions(connectTimeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    // A request never waits for Redis to return: fail instead of queueing while disconnected.
    enableOfflineQueue: false,
    // A command lost with its connection is never sent again: Redis may have run it already.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: connectTimeoutMs,
    // No commandTimeout: the stall watchdog fails unanswered commands from one timer.
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    // The subscriber restores its channels itself, and knows when that is done.
    autoResubscribe: false,
  };
}

/**
 * TLS to Redis, the same for every connection (a single server, the master and replicas found
 * through Sentinel, the sentinels, the nodes of a cluster). The server's certificate is always
 * verified: there is no way to turn that off.
 */
export interface RedisTls {
  /** PEM of the CAs that signed the servers' certificates; without it, Node's trusted CAs. */
  ca?: string | Buffer;
  /** A client certificate and its private key (PEM), for servers with tls-auth-clients yes. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** The name the servers' certificates are checked against instead of the address dialled. */
  serverName?: string;
}

/** ioredis' `tls` option (Node's tls.connect options) for RedisTls. */
export function tlsOptions(tls: RedisTls): ConnectionOptions {
  if ((tls.cert === undefined) !== (tls.key === undefined)) throw new Error('a Redis TLS client certificate needs both its certificate and its key');
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key }),
    ...(tls.serverName === undefined ? {} : { servername: tls.serverName }),
    rejectUnauthorized: true,
  };
}

/**
 * What TLS adds to the options of a connection through Sentinel: `tls` for the master (and
 * replicas) when `dataTls` is given, `sentinelTLS` for the sentinels when `sentinelTls` is.
 */
export function sentinelTlsOptions(dataTls: RedisTls | undefined, sentinelTls: RedisTls | undefined): RedisOptions {
  return {
    ...(dataTls === undefined ? {} : { tls: tlsOptions(dataTls), enableTLSForSentinelMode: true }),
    ...(sentinelTls === undefined ? {} : { sentinelTLS: tlsOptions(sentinelTls) }),
  };
}

/** openssl's reasons for not trusting a certificate, as Node names them in error.code. */
const UNVERIFIED_CERTIFICATE = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'CERT_REVOKED', 'INVALID_CA', 'INVALID_PURPOSE', 'PATH_LENGTH_EXCEEDED', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
]);

/** A TLS failure in words (Node's messages name certificates and hosts, never a secret). */
function tlsFailure(code: string, message: string): string | null {
  if (UNVERIFIED_CERTIFICATE.has(code)) return `the server's TLS certificate could not be verified against the trusted CAs (${code}: ${message})`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the server's TLS certificate is not for the name checked (${message})`;
  if (/^ERR_SSL_.*ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|HANDSHAKE_FAILURE)$/.test(code)) {
    return `the server refused the TLS handshake (${code}): it wants a client certificate signed by a CA it trusts`;
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return `the server does not speak TLS (${code})`;
  return null;
}

/** Errors from Node's sockets may come from another realm (a test VM): no instanceof here. */
export function errorText(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (typeof code === 'string') return tlsFailure(code, typeof message === 'string' ? message : code) ?? code;
    if (typeof message === 'string') return message;
  }
  return String(error);
}

/** An error's text for a log line or a message, a timeout saying how long was waited. */
export function reasonOf(context: RedisContext, error: unknown): string {
  const text = errorText(error);
  return text === 'Command timed out' ? `no answer within ${context.commandTimeoutMs} ms` : text;
}

/** Where Redis is, as host:port: enough to find it, without the credentials of the URL. */
export function describeServer(url: string): string {
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

/** A Sentinel master for log lines: its name and the sentinels that know where it is. */
export function describeSentinelMaster(masterName: string, sentinels: { host: string; port: number }[]): string {
  return `master ${masterName} via sentinels ${sentinels.map(({ host, port }) => `${host}:${port}`).join(',')}`;
}

/** A cluster for log lines: its seed nodes. */
export function describeCluster(nodes: { host: string; port: number }[]): string {
  return `cluster ${nodes.map(({ host, port }) => `${host}:${port}`).join(',')}`;
}

/**
 * The options of a Cluster client (docs/design/redis-keys.md). `redisOptions` go to the connection
 * of every node: baseRedisOptions, the credentials, and TLS when there is any. MOVED and ASK are
 * followed (the node did not run the command); TRYAGAIN too, a little later. A command lost with
 * its node's connection is not sent again (retryDelayOnFailover 0: it may have run), and
 * CLUSTERDOWN fails at once (retryDelayOnClusterDown 0): a request never waits for a failover.
 */
export function clusterOptions(redisOptions: RedisOptions, connectTimeoutMs: number): ClusterOptions {
  return {
    lazyConnect: true,
    redisOptions,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    scaleReads: 'master',
    maxRedirections: 16,
    retryDelayOnMoved: 0,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: connectTimeoutMs,
    // No slotsRefreshInterval: the slot map is read again on a MOVED and when a node is lost, which
    // the heartbeat's ping of every node finds within a second (and ioredis 5.11.1 can leave that
    // interval's timer running after quit()).
  };
}

/**
 * What a connection through Sentinel adds to baseRedisOptions. Each (re)connection asks the
 * sentinels where the master is and checks that it answers ROLE as master, so after a failover
 * the next reconnection reaches the new master; the failover detector ends the connection to the
 * old one as soon as a sentinel announces +switch-master. When no sentinel leads to a master,
 * openConnection's sentinelRetryStrategy decides.
 */
export function sentinelOptions(masterName: string, sentinels: { host: string; port: number }[], connectTimeoutMs: number): RedisOptions {
  return {
    sentinels,
    name: masterName,
    role: 'master',
    sentinelCommandTimeout: connectTimeoutMs,
    failoverDetector: true,
    // The sentinels' own view of each other is not trusted over the configured list.
    updateSentinels: false,
  };
}

/**
 * Why a client cannot talk to the sentinels, found with connections of its own, all at once (so
 * within one connect timeout): ioredis reports a sentinel it could not reach only as "Connection
 * is closed". The first sentinel's failure in the list, or null when every sentinel answers.
 */
export async function probeSentinels(sentinels: { host: string; port: number }[], options: RedisOptions): Promise<string | null> {
  const failures = await Promise.all(sentinels.map(async ({ host, port }) => {
    const client = new Redis({
      host,
      port,
      ...(options.sentinelTLS ? { tls: options.sentinelTLS } : {}),
      ...(options.sentinelPassword ? { password: options.sentinelPassword } : {}),
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: options.connectTimeout ?? 2000,
      commandTimeout: options.connectTimeout ?? 2000,
    });
    let failure: unknown;
    client.on('error', (error: unknown) => (failure ??= error));
    try {
      await client.connect();
      await client.ping();
      return null;
    } catch (error) {
      return `sentinel ${host}:${port}: ${errorText(failure ?? error)}`;
    } finally {
      await endConnection(client);
    }
  }));
  return failures.find((failure) => failure !== null) ?? null;
}

/**
 * Creates a connection (not connected yet) with its reconnection policy and its logging. Until it
 * has connected once, a failure is final (connectFirst reports it); afterwards it reconnects for
 * as long as the store is open.
 */
/** What openConnection asks of the connection it creates: its name and its reconnection policy. */
export interface RoleOptions {
  connectionName: string;
  /** The delay before the next attempt, or null to give up (ioredis' retryStrategy). */
  retry: (attempt: number) => number | null;
}

export function openConnection<Client extends RedisClient>(context: RedisContext, role: Role, make: (roleOptions: RoleOptions) => Client): Connection<Client> {
  const { logger, server } = context;
  const state = { role, everReady: false, outageReported: false, lastError: null as string | null, heartbeatInFlight: false };
  const client = make({
    connectionName: role === 'commands' ? 'tessera' : `tessera-${role}`,
    retry: (attempt: number) => (context.closing || !state.everReady ? null : reconnectDelay(attempt)),
  });
  const connection: Connection<Client> = Object.assign(state, { client });
  const reportOutage = (reason: string) => {
    if (context.closing || !connection.everReady || connection.outageReported) return;
    connection.outageReported = true;
    logger.warn({ redis: server, connection: role, reason }, 'lost the connection to Redis; reconnecting in the background');
  };
  // Without an 'error' listener ioredis would print every failed reconnection attempt.
  client.on('error', (error: unknown) => {
    connection.lastError = reasonOf(context, error);
    reportOutage(connection.lastError);
  });
  client.on('close', () => reportOutage(connection.lastError ?? 'connection closed'));
  client.on('ready', () => {
    connection.lastError = null;
    if (connection.outageReported && !context.closing) {
      logger.info({ redis: server, connection: role }, 'reconnected to Redis');
    }
    connection.outageReported = false;
  });
  return connection;
}

/** Connects for the first time, within connectTimeoutMs, or ends the connection and explains. */
export async function connectFirst(context: RedisContext, connection: Connection): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const connecting = connection.client.connect();
  connecting.catch(() => undefined); // its failure is reported through the race below
  try {
    await Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${context.connectTimeoutMs} ms`)), context.connectTimeoutMs);
      }),
    ]);
    connection.everReady = true;
  } catch (error) {
    let reason = connection.lastError ?? reasonOf(context, error);
    await endConnection(connection.client);
    const found = await context.diagnose?.().catch(() => null);
    if (found) reason = `${reason} (${found})`;
    if (context.clientCertificate !== undefined && reason.includes('ECONNRESET')) {
      reason += context.clientCertificate
        ? ': over TLS, a server that asks for client certificates (tls-auth-clients) closes the connection of a client whose certificate is not signed by a CA it trusts'
        : ': over TLS, a server that asks for client certificates (tls-auth-clients) closes the connection of a client without one, and none was given';
    }
    throw new Error(`cannot reach Redis at ${context.server}: ${reason}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a command, turning ioredis errors into messages that say what happened and where. */
export async function run<T>(context: RedisContext, operation: string, connection: Connection, send: () => Promise<T>): Promise<T> {
  if (context.closing) throw new Error(`the Redis ephemeral store is closed (${operation})`);
  const { observe } = context;
  const started = observe ? performance.now() : 0;
  for (let redirections = 0; ; redirections++) {
    try {
      const result = await send();
      observe?.('redis', operation, (performance.now() - started) / 1000, 'ok');
      return result;
    } catch (error) {
      // ioredis follows MOVED and ASK, except for an auto-pipelined batch whose commands were
      // redirected to different slots (after a failover, before the slot map is read again): it
      // rejects each. The node ran none of them, so each is sent again once the map is fresh.
      const { client } = connection;
      const replied = (error as { name?: unknown } | null)?.name === 'ReplyError';
      const redirected = client instanceof Cluster && replied && REDIRECTION.test(errorText(error));
      if (client instanceof Cluster && !replied && !context.closing) refreshSlotMapSoon(client);
      if (!redirected || redirections >= MAX_REDIRECTIONS || context.closing) {
        const explained = explain(context, operation, connection, error);
        observe?.('redis', operation, (performance.now() - started) / 1000, explained instanceof StoreUnavailableError ? 'unavailable' : 'error');
        throw explained;
      }
      await new Promise<void>((resolve) => client.refreshSlotsCache(() => resolve()));
    }
  }
}

/** At most one slot-map refresh per cluster client in this long, however many commands fail. */
const SLOT_MAP_REFRESH_MS = 100;
const slotMapRefreshedAt = new WeakMap<Cluster, number>();

/**
 * A command lost with its node (dead, or frozen past the command timeout) is not sent again, but
 * the slot map is read again in the background: ioredis reads it only on a MOVED, and a client
 * whose map still names a dead master would keep sending that master's slots to it after its
 * replica took over. Once the promotion is known, the next command goes to the new master.
 */
function refreshSlotMapSoon(client: Cluster): void {
  const now = performance.now();
  if (now - (slotMapRefreshedAt.get(client) ?? -Infinity) < SLOT_MAP_REFRESH_MS) return;
  slotMapRefreshedAt.set(client, now);
  client.refreshSlotsCache(() => undefined);
}

function explain(context: RedisContext, operation: string, connection: Connection, error: unknown): Error {
  const { server, commandTimeoutMs } = context;
  const text = errorText(error);
  if ((error as { name?: unknown } | null)?.name === 'ReplyError') {
    if (CLUSTER_UNAVAILABLE.test(text)) {
      return new StoreUnavailableError('Redis', `Redis at ${server} is unavailable (${text.split(' ')[0]}); ${operation} was not run`, { cause: error });
    }
    return new Error(`Redis ${operation} failed: ${text}`, { cause: error });
  }
  if (text === 'Command timed out') {
    return new StoreUnavailableError('Redis', `Redis at ${server} did not answer ${operation} within ${commandTimeoutMs} ms`, { cause: error });
  }
  const { status } = connection.client;
  if (status !== 'ready' || CONNECTION_LOST.test(text)) {
    const why = connection.lastError ? `${connection.lastError}, reconnecting` : status === 'ready' ? 'connection lost' : `connection ${status}`;
    return new StoreUnavailableError('Redis', `Redis at ${server} is unavailable (${why}); ${operation} was not run`, { cause: error });
  }
  return new Error(`Redis ${operation} failed at ${server}: ${text}`, { cause: error });
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
export async function endConnection(client: RedisClient): Promise<void> {
  if (client instanceof Cluster) {
    if (client.status !== 'end') {
      const ended = new Promise((resolve) => client.once('end', resolve));
      client.disconnect();
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, DISCONNECT_TIMEOUT_MS * 5))]);
    }
    // Each node's connection, whatever the cluster's own status.
    await Promise.all(client.nodes('all').map((node) => endConnection(node)));
    return;
  }
  if (client.status === 'end') {
    // Through Sentinel, the failover detector's connections to the sentinels outlive the one to
    // the master (a QUIT ends only that): disconnect() ends them too.
    if (client.options.sentinels?.length) client.disconnect();
    return;
  }
  if (client.status === 'wait') {
    client.disconnect();
    return;
  }
  const stream = client.stream as Socket | undefined;
  const streamOpen = stream !== undefined && !stream.destroyed;
  // disconnect() arms a DISCONNECT_TIMEOUT_MS timer that only the socket's 'close' clears; a socket
  // already closed never closes again, so wait that timer out and leave nothing behind.
  client.disconnect();
  if (streamOpen) {
    await socketClosed(stream, DISCONNECT_TIMEOUT_MS * 5);
  } else {
    await new Promise((resolve) => setTimeout(resolve, DISCONNECT_TIMEOUT_MS));
  }
}

/** QUIT when connected (Redis answers and closes the socket), otherwise end the connection now. */
export async function quit(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client instanceof Cluster) {
    // Each connected node on its own: the Cluster's quit() would first connect the idle ones.
    await Promise.all(client.nodes('all').map((node) => quit(node, timeoutMs)));
    await endConnection(client);
    return;
  }
  if (client.status === 'ready') {
    const stream = client.stream as Socket | undefined;
    try {
      await client.quit();
      await socketClosed(stream, timeoutMs);
    } catch {
      // fall through: the connection is ended below
    }
  }
  await endConnection(client);
}
