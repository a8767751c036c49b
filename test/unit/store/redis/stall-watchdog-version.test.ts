import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { REVIEWED_IOREDIS_VERSION } from '../../../../src/store/redis/stall-watchdog.ts';

// The stall watchdog reads ioredis' private command queue: it holds for the version it was reviewed against only.

describe('the ioredis seam (the stall watchdog)', () => {
  it('was reviewed against the installed ioredis', () => {
    const installed = (JSON.parse(readFileSync(createRequire(import.meta.url).resolve('ioredis/package.json'), 'utf8')) as { version: string }).version;
    const advice =
      `ioredis ${installed} is installed, but src/store/redis/stall-watchdog.ts was reviewed against ${REVIEWED_IOREDIS_VERSION}. ` +
      'Re-read how ioredis keeps its command queue (lib/Redis.ts, lib/Command.ts) in the upstream diff, run test/integration/redis-outage.test.ts, then update REVIEWED_IOREDIS_VERSION.';
    expect({ installed, advice }).toEqual({ installed: REVIEWED_IOREDIS_VERSION, advice });
  });

  it('is pinned in package.json to that exact version', () => {
    const manifest = JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
    expect(manifest.dependencies.ioredis).toBe(REVIEWED_IOREDIS_VERSION);
  });
});
