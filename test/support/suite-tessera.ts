import { afterAll, beforeAll } from '@jest/globals';
import { createTestDatabase, dropRedisPrefix, TEST_REDIS_URL, uniqueRedisPrefix, type TestDatabase } from './services.ts';
import { startTestTessera, type TestTessera } from './start-tessera.ts';
import { freePort } from './private-redis.ts';

export interface SuiteTesseraOptions {
  /**
   * Listen on a free port of the suite's own and make the issuer http://127.0.0.1:<that port>, so
   * that a real client's discovery (openid-client) finds the issuer it asked for (`suite.issuer`).
   */
  issuerOnItsPort?: boolean;
}

/**
 * A Tessera of a describe block's own, on a new PostgreSQL database and Redis prefix: started
 * before its tests, stopped and cleaned up after them. `overrides` are configuration values, as
 * startTestTessera takes them. Read it as `suite.tessera` (and `suite.issuer`) inside a test or a
 * later beforeAll.
 */
export function tesseraForSuite(
  env: Record<string, string> = {},
  overrides: Record<string, unknown> = {},
  options: SuiteTesseraOptions = {},
): { readonly tessera: TestTessera; readonly issuer: URL } {
  const prefix = uniqueRedisPrefix();
  let db: TestDatabase | undefined;
  let running: TestTessera | undefined;
  let issuer: URL | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
    const own: Record<string, string> = {};
    if (options.issuerOnItsPort) {
      const port = await freePort();
      issuer = new URL(`http://127.0.0.1:${port}`);
      Object.assign(own, { PORT: String(port), ISSUER: issuer.origin });
    }
    running = await startTestTessera({ DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, TESSERA_REDIS_PREFIX: prefix, ...own, ...env }, overrides);
    issuer ??= new URL(running.url);
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
    get issuer(): URL {
      if (!issuer) throw new Error('the suite\'s Tessera is not running (read it inside a test)');
      return issuer;
    },
  };
}
