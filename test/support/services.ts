import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';

/** The real services integration tests use; override with TEST_DATABASE_URL / TEST_REDIS_URL. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * The settings a test run passes on to every Tessera it starts: TESSERA_DIRECT_GRANTS, with which
 * .ci/run runs the OAuth suites a second time (false: every grant through oidc-provider).
 */
export const RUN_SETTINGS: Readonly<Record<string, string>> = process.env.TESSERA_DIRECT_GRANTS === undefined ? {} : { TESSERA_DIRECT_GRANTS: process.env.TESSERA_DIRECT_GRANTS };

/** A name no other run or test file shares: its own Redis prefix, its own database. */
export function uniqueName(kind: string): string {
  return `tessera_${kind}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** A Redis key prefix for one test file; keys under it are deleted by `dropRedisPrefix`. */
export function uniqueRedisPrefix(): string {
  return `${uniqueName('t')}:`;
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty database of its own on the test server; drop() removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = uniqueName('db');
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Deletes every key under a test's Redis prefix. */
export async function dropRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true });
  await redis.connect();
  try {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}
