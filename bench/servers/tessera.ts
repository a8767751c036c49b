/**
 * Tessera under test: `node src/main.ts`, exactly as `npm start` runs it, in a process of its own,
 * on the machine's PostgreSQL (a database of its own) and Redis (a key prefix of its own), with a
 * TESSERA_CONFIG file that adds a JWT resource.
 *
 * The orchestrator prepares what the measurements need the way an operator and users would: it
 * opens Tessera's core beside the server (as `tessera client create` does) for clients, users and
 * personal tokens, and uses HTTP for everything a client does (tokens, logins, device approvals).
 * Settings that differ from the defaults, and why:
 *
 * - TESSERA_DEVICE_POLL_INTERVAL=1 so the 32 device logins that mint refresh tokens finish fast;
 * - oauth.userCodeAttemptsPerIpPerHour raised: all approvals come from 127.0.0.1;
 * - TESSERA_API_REQUESTS_PER_IP_PER_MINUTE raised: the login storm comes from one address (the
 *   per-address limit would otherwise answer it 429 before argon2 is ever reached);
 * - TESSERA_LOG_LEVEL=warn.
 * Password hashing keeps the defaults (argon2id m=19 MiB, t=2; one hash per core at once).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { openCore, type OnlineCore } from '../../src/core.ts';
import { openEphemeralStore } from '../../src/store/open-stores.ts';
import type { EphemeralStore } from '../../src/store/ephemeral/ephemeral-store.ts';
import { startServer, type ServerProcess } from '../lib/child.ts';

export const JWT_RESOURCE = 'urn:bench:jwt';
export const DEVICE_POLL_INTERVAL_SECONDS = 1;

export interface TesseraUnderTest {
  server: ServerProcess;
  url: string;
  prefix: string;
  databaseUrl: string;
  /** Tessera's core, opened beside the server on the same database and Redis prefix. */
  core: OnlineCore;
  ephemeral: EphemeralStore;
  /** The environment the server runs with (secrets included; never printed). */
  env: Record<string, string>;
  /** Stops the server, closes the core, drops the database and deletes the Redis keys. */
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Deletes every key under a prefix. */
export async function deleteRedisPrefix(redisUrl: string, prefix: string): Promise<number> {
  const redis = new Redis(redisUrl);
  let deleted = 0;
  try {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) deleted += await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
  return deleted;
}

export interface StartOptions {
  /** PostgreSQL to create the bench database on (its database is only used to connect). */
  adminDatabaseUrl: string;
  redisUrl: string;
  /**
   * Redis settings instead of redisUrl (e.g. REDIS_CLUSTER_NODES for a cluster the bench started);
   * the keys are then left to that Redis, which the bench discards.
   */
  redisEnv?: Record<string, string>;
  /** Extra node options for the server (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Another checkout of Tessera to run (its src/main.ts), to compare a change in the same run. */
  root?: string;
  /** More environment for the server (e.g. TESSERA_HASH_CONCURRENCY=1), over the bench's own. */
  extraEnv?: Record<string, string>;
}

export async function startTessera(options: StartOptions): Promise<TesseraUnderTest> {
  const tag = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const databaseName = `tessera_bench_${tag}`;
  const prefix = `tessera_bench_${tag}:`;
  const databaseUrl = new URL(options.adminDatabaseUrl);
  databaseUrl.pathname = `/${databaseName}`;
  await adminQuery(options.adminDatabaseUrl, `CREATE DATABASE ${databaseName}`);

  const configDir = mkdtempSync(join(tmpdir(), 'tessera-bench-'));
  const configFile = join(configDir, 'tessera.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      oauth: {
        resources: { 'urn:tessera:api': { format: 'opaque' }, [JWT_RESOURCE]: { format: 'jwt' } },
        userCodeAttemptsPerIpPerHour: 100_000,
        userCodeAttemptsPerSessionPerHour: 100_000,
      },
    }),
  );
  const port = await freePort();
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl.toString(),
    ...(options.redisEnv ?? { REDIS_URL: options.redisUrl }),
    TESSERA_REDIS_PREFIX: prefix,
    ISSUER: `http://127.0.0.1:${port}`,
    HOST: '127.0.0.1',
    PORT: String(port),
    TESSERA_KEY_SECRET: randomBytes(32).toString('base64url'),
    TESSERA_COOKIE_KEYS: randomBytes(32).toString('base64url'),
    TESSERA_ADMIN_PASSWORD: randomBytes(16).toString('base64url'),
    TESSERA_LOG_LEVEL: 'warn',
    TESSERA_DEVICE_POLL_INTERVAL: String(DEVICE_POLL_INTERVAL_SECONDS),
    TESSERA_API_REQUESTS_PER_IP_PER_MINUTE: '100000000',
    TESSERA_CONFIG: configFile,
    ...options.extraEnv,
  };
  const url = `http://127.0.0.1:${port}`;
  const cleanUp = async () => {
    rmSync(configDir, { recursive: true, force: true });
    if (!options.redisEnv) await deleteRedisPrefix(options.redisUrl, prefix);
    await adminQuery(options.adminDatabaseUrl, `DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  };

  let server: ServerProcess;
  try {
    server = await startServer([...(options.nodeArgs ?? []), options.root ? join(options.root, 'src', 'main.ts') : 'src/main.ts'], env, async () => {
      try {
        const res = await fetch(`${url}/readyz`);
        return res.status === 200 ? url : undefined;
      } catch {
        return undefined;
      }
    });
  } catch (error) {
    await cleanUp();
    throw error;
  }

  // The core beside the server, from the same tree as the server (another checkout's schema may
  // differ from this one's): the server has migrated the database already.
  const own = options.root ? await importCoreOf(options.root) : { loadConfig, createLogger, openEphemeralStore, openCore };
  const config = own.loadConfig({ env: { ...env, PORT: '0' } });
  const logger = own.createLogger({ level: 'silent' });
  const ephemeral = await own.openEphemeralStore(config, logger);
  const core = await own.openCore(config, logger, { migrate: false, ephemeral });

  return {
    server,
    url,
    prefix,
    databaseUrl: databaseUrl.toString(),
    core,
    ephemeral,
    env,
    async stop() {
      await server.stop();
      await core.database.close();
      await ephemeral.close();
      await cleanUp();
    },
  };
}

/** The modules that open a core, from another checkout (its own schema and services). */
async function importCoreOf(root: string): Promise<{ loadConfig: typeof loadConfig; createLogger: typeof createLogger; openEphemeralStore: typeof openEphemeralStore; openCore: typeof openCore }> {
  const from = (path: string) => import(pathToFileURL(join(resolve(root), path)).href);
  const [load, log, stores, core] = await Promise.all([from('src/config/load.ts'), from('src/shared/logger.ts'), from('src/store/open-stores.ts'), from('src/core.ts')]);
  return { loadConfig: load.loadConfig, createLogger: log.createLogger, openEphemeralStore: stores.openEphemeralStore, openCore: core.openCore };
}
