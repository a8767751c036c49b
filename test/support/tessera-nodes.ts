import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config/load.ts';
import { openCore, type Core } from '../../src/core.ts';
import { createLogger } from '../../src/shared/logger.ts';
import { freePort } from './private-redis.ts';
import { recordCoreSecrets } from './secret-ledger.ts';
import { startServerProcess, type ServerProcess } from './server-process.ts';
import { createTestDatabase, type TestDatabase } from './services.ts';

/** Several `node src/main.ts` processes on one PostgreSQL database and one Redis (prefix), as nodes behind a load balancer. */
export interface TesseraNodes {
  /** The issuer every node names: the first node's address (browsers' redirects lead there unless pinned, see HttpBrowser). */
  issuer: URL;
  nodes: ServerProcess[];
  /** Opens the services (accounts, clients, personal tokens) on the shared database, for setting up; close it with closeCore. */
  openCore(): Promise<Core>;
  stop(): Promise<void>;
}

/** Light argon2 parameters, as every test Tessera has. */
const LIGHT_HASHING = { TESSERA_ARGON2_MEMORY_KIB: '8192', TESSERA_ARGON2_TIME_COST: '1' };

/**
 * Starts `count` Tessera server processes on a new test database, with `storeEnv` (REDIS_URL or
 * the Sentinel settings, and a key prefix of the caller's) and `env` on each. The first node
 * starts (and migrates) alone, then the others together.
 */
export async function startTesseraNodes(count: number, storeEnv: Record<string, string>, env: Record<string, string> = {}): Promise<TesseraNodes> {
  const db: TestDatabase = await createTestDatabase();
  const nodes: ServerProcess[] = [];
  const port = await freePort();
  const issuer = new URL(`http://127.0.0.1:${port}`);
  const shared = {
    ISSUER: issuer.origin,
    DATABASE_URL: db.url,
    TESSERA_KEY_SECRET: randomBytes(24).toString('base64url'),
    TESSERA_COOKIE_KEYS: randomBytes(24).toString('base64url'),
    ...storeEnv,
    ...env,
  };
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await db.drop();
  };
  try {
    nodes.push(await startServerProcess({ ...shared, PORT: String(port) }, { timeoutMs: 60_000 }));
    nodes.push(...(await Promise.all(Array.from({ length: count - 1 }, () => startServerProcess({ ...shared, PORT: '0' }, { timeoutMs: 60_000 })))));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    issuer,
    nodes,
    async openCore() {
      const core = await openCore(loadConfig({ env: { ...LIGHT_HASHING, ...shared } }), createLogger({ level: 'silent' }));
      recordCoreSecrets(core);
      return core;
    },
    stop,
  };
}

export async function closeCore(core: Core): Promise<void> {
  await core.database.close();
}
