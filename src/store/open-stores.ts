import type { Logger } from 'pino';
import { dataDirectory, redactUrl } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import type { Database } from './sql/database.ts';
import type { EphemeralStore } from './ephemeral/ephemeral-store.ts';
import { createMemoryEphemeralStore } from './ephemeral/memory-ephemeral-store.ts';
import { createPGliteDatabase } from './sql/pglite-database.ts';
import { createPostgresDatabase } from './sql/postgres-database.ts';
import { createRedisEphemeralStore } from './redis/redis-ephemeral-store.ts';

/** PostgreSQL when database.url is set, otherwise the embedded PGlite in database.dataDir. */
export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  if (config.database.url) {
    const database = await createPostgresDatabase({
      url: config.database.url,
      poolSize: config.database.poolSize,
      onError: (error) => logger.warn({ reason: error.message }, 'PostgreSQL connection error'),
    });
    logger.info({ database: redactUrl(config.database.url) }, 'using PostgreSQL');
    return database;
  }
  const dir = dataDirectory(config);
  const database = await createPGliteDatabase({ dataDir: dir });
  logger.info({ dataDir: dir }, 'using the embedded database (PGlite); set DATABASE_URL to use PostgreSQL');
  return database;
}

/** Redis when redis.url is set, otherwise the in-process store, which only suits one process. */
export async function openEphemeralStore(config: Config, logger: Logger): Promise<EphemeralStore> {
  if (config.redis.url) {
    const store = await createRedisEphemeralStore({
      url: config.redis.url,
      keyPrefix: config.redis.keyPrefix,
      connectTimeoutMs: config.redis.connectTimeoutMs,
      commandTimeoutMs: config.redis.commandTimeoutMs,
      logger,
    });
    logger.info({ redis: redactUrl(config.redis.url), keyPrefix: config.redis.keyPrefix }, 'using Redis');
    return store;
  }
  logger.warn(
    '*** REDIS_URL is not set: sessions, tokens and rate limits live in this process only. ' +
      'They are lost on restart and not shared with other nodes. Fine for a trial; set REDIS_URL in production. ***',
  );
  return createMemoryEphemeralStore({ keyPrefix: config.redis.keyPrefix });
}
