import { afterAll, beforeAll } from '@jest/globals';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from './services.ts';
import { startTestTessera, type TestTessera } from './start-tessera.ts';

/**
 * A Tessera of a describe block's own, on a new PostgreSQL database and Redis prefix: started
 * before its tests, stopped and cleaned up after them. `overrides` are configuration values, as
 * startTestTessera takes them. Read it as `suite.tessera` inside a test.
 */
export function tesseraForSuite(env: Record<string, string> = {}, overrides: Record<string, unknown> = {}): { readonly tessera: TestTessera } {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase | undefined;
  let running: TestTessera | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
    running = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, ...env }, overrides);
  });
  afterAll(async () => {
    await running?.stop();
    await db?.drop();
    await dropRedisPrefix(prefix);
  });
  return {
    get tessera(): TestTessera {
      if (!running) throw new Error('the suite\'s Tessera is not running (read it inside a test)');
      return running;
    },
  };
}
