import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './private-redis.ts';
import { startServerProcess, type ServerProcess } from './server-process.ts';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from './services.ts';
import { startTestTessera, type TestTessera } from './start-tessera.ts';

// Two Tessera nodes on one PostgreSQL database and one Redis prefix, as behind a load balancer:
// node A runs in this process (a test reaches its services through `a.core`), node B is
// `node src/main.ts` in a child process. What one node does, the other must see.

export interface TwoNodesOptions {
  /** Settings (environment variables) of both nodes. */
  settings?: Record<string, string>;
  /** A configuration file both nodes read (TESSERA_CONFIG). */
  config?: Record<string, unknown>;
  /** Node A's own: more settings, configuration overrides (B has none), start options. */
  a?: { settings?: Record<string, string>; overrides?: Record<string, unknown>; options?: Parameters<typeof startTestTessera>[2] };
}

export interface TwoNodes {
  a: TestTessera;
  b: ServerProcess;
  /** Both nodes' issuer: node A's address. */
  issuer: URL;
  db: TestDatabase;
  /** The configuration file both read, when `config` was given. */
  configFile: string | undefined;
  /** Stops both nodes and removes the database, the Redis prefix and the configuration file. */
  stop(): Promise<void>;
}

/** Starts the two nodes; a step that fails takes down what the steps before it started. */
export async function startTwoNodes(options: TwoNodesOptions = {}): Promise<TwoNodes> {
  const prefix = uniqueRedisPrefix();
  const undo: (() => Promise<unknown>)[] = [() => dropRedisPrefix(prefix)];
  const stop = async () => {
    for (const step of undo.reverse()) await step();
  };
  try {
    const db = await createTestDatabase();
    undo.push(() => db.drop());
    let configFile: string | undefined;
    if (options.config) {
      const dir = await mkdtemp(join(tmpdir(), 'tessera-two-nodes-'));
      undo.push(() => rm(dir, { recursive: true, force: true }));
      configFile = join(dir, 'tessera.json');
      await writeFile(configFile, JSON.stringify(options.config));
    }
    const port = await freePort();
    const issuer = new URL(`http://127.0.0.1:${port}`);
    const shared = {
      ISSUER: issuer.origin,
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      TESSERA_REDIS_PREFIX: prefix,
      TESSERA_KEY_SECRET: 'two-nodes-key-encryption-secret-0123456789',
      TESSERA_COOKIE_KEYS: 'two-nodes-cookie-key-0123456789abcdefghij',
      ...(configFile ? { TESSERA_CONFIG: configFile } : {}),
      ...options.settings,
    };
    const a = await startTestTessera({ ...shared, PORT: String(port), ...options.a?.settings }, options.a?.overrides, options.a?.options);
    undo.push(() => a.stop());
    const b = await startServerProcess({ ...shared, PORT: '0' });
    undo.push(() => b.stop());
    return { a, b, issuer, db, configFile, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
