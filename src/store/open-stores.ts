import type { Logger } from 'pino';
import { dataDirectory, readRedisTls, redactUrl } from '../config/load.ts';
import { HOST_PORT, type Config } from '../config/schema.ts';
import type { Database } from './sql/database.ts';
import type { EphemeralStore } from './ephemeral/ephemeral-store.ts';
import { createMemoryEphemeralStore } from './ephemeral/memory-ephemeral-store.ts';
import { createPGliteDatabase } from './sql/pglite-database.ts';
import { createPostgresDatabase } from './sql/postgres-database.ts';
import { createRedisEphemeralStore } from './redis/redis-ephemeral-store.ts';
import { observedDatabase } from './sql/observed-database.ts';
import type { StoreObserver } from './store-observer.ts';

/** PostgreSQL when database.url is set, otherwise the embedded PGlite in database.dataDir. */
export async function openDatabase(config: Config, logger: Logger, options: StoreOptions = {}): Promise<Database> {
  if (config.database.url) {
    const database = await createPostgresDatabase({
      url: config.database.url,
      poolSize: config.database.poolSize,
      onError: (error) => logger.warn({ reason: error.message }, 'PostgreSQL connection error'),
    });
    logger.info({ database: redactUrl(config.database.url) }, 'using PostgreSQL');
    return options.observe ? observedDatabase(database, options.observe) : database;
  }
  const dir = dataDirectory(config);
  const database = await createPGliteDatabase({ dataDir: dir });
  logger.info({ dataDir: dir }, 'using the embedded database (PGlite); set DATABASE_URL to use PostgreSQL');
  return options.observe ? observedDatabase(database, options.observe) : database;
}

export interface StoreOptions {
  /** Told of each store command's time and outcome (the metrics). */
  observe?: StoreObserver;
}

/** Sentinels or cluster nodes of the configuration (host:port, validated by the schema) as ioredis takes them. */
export function sentinelAddresses(addresses: string[]): { host: string; port: number }[] {
  return addresses.map((address) => {
    const [, host, port] = HOST_PORT.exec(address)!;
    return { host: host!.replace(/^\[(.*)\]$/, '$1'), port: Number(port) };
  });
}

/**
 * Redis when redis.url is set, Redis through Sentinel when redis.sentinels is, a Redis Cluster when
 * redis.clusterNodes is, otherwise the in-process store, which only suits one process.
 */
export async function openEphemeralStore(config: Config, logger: Logger, options: StoreOptions = {}): Promise<EphemeralStore> {
  const { sentinels, sentinelMaster, sentinelPassword, clusterNodes, password, username } = config.redis;
  const { tls, sentinelTls } = readRedisTls(config.redis);
  const credentials = { ...(password === null ? {} : { password }), ...(username === null ? {} : { username }) };
  const common = {
    ...(tls === undefined ? {} : { tls }),
    keyPrefix: config.redis.keyPrefix,
    connectTimeoutMs: config.redis.connectTimeoutMs,
    commandTimeoutMs: config.redis.commandTimeoutMs,
    logger,
    ...(options.observe ? { observe: options.observe } : {}),
  };
  if (clusterNodes.length > 0) {
    const store = await createRedisEphemeralStore({
      cluster: { nodes: sentinelAddresses(clusterNodes), ...credentials },
      ...common,
    });
    logger.info({ redisCluster: clusterNodes, redisTls: tls !== undefined, keyPrefix: config.redis.keyPrefix }, 'using a Redis Cluster');
    return store;
  }
  if (sentinelMaster !== null && sentinels.length > 0) {
    const sentinel = {
      sentinels: sentinelAddresses(sentinels),
      masterName: sentinelMaster,
      ...(sentinelPassword === null ? {} : { sentinelPassword }),
      ...credentials,
      ...(sentinelTls === undefined ? {} : { sentinelTls }),
    };
    const store = await createRedisEphemeralStore({
      sentinel,
      ...common,
    });
    logger.info({ redisSentinels: sentinels, redisMaster: sentinelMaster, redisTls: tls !== undefined, sentinelTls: sentinelTls !== undefined, keyPrefix: config.redis.keyPrefix }, 'using Redis through Sentinel');
    return store;
  }
  if (config.redis.url) {
    const store = await createRedisEphemeralStore({
      url: config.redis.url,
      ...common,
    });
    logger.info({ redis: redactUrl(config.redis.url), redisTls: tls !== undefined, keyPrefix: config.redis.keyPrefix }, 'using Redis');
    return store;
  }
  logger.warn(
    '*** REDIS_URL is not set: sessions, tokens and rate limits live in this process only. ' +
      'They are lost on restart and not shared with other nodes. Fine for a trial; set REDIS_URL in production. ***',
  );
  return createMemoryEphemeralStore({ keyPrefix: config.redis.keyPrefix });
}
