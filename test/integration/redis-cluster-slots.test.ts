import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { slotOfKey } from '../../src/store/redis/cluster-slots.ts';
import { freePort, killRedisServer, startRedisServer, withRedisClient } from '../support/private-redis.ts';

// slotOfKey against Redis itself: CLUSTER KEYSLOT of a cluster-enabled redis-server of this file's own.

describe('slotOfKey', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-keyslot-'));
  let port: number;
  let server: ChildProcess;
  beforeAll(async () => {
    port = await freePort();
    server = await startRedisServer(port, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--dir', dir]);
  });
  afterAll(async () => {
    await killRedisServer(server);
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives the slot Redis gives, hash tags or not, ASCII or not', async () => {
    const keys = [
      '',
      'foo',
      '123456789',
      'oidc:{abc}:AccessToken',
      '{}empty-tag',
      'foo{}{bar}',
      'no{close',
      '{a}{b}',
      'tessera:oidc:client:{ünïcødé}',
      'emoji:{🔑}',
      ...Array.from({ length: 2000 }, (_, i) => `tessera-${i}:oidc:{${randomBytes(32).toString('base64url')}}:ClientCredentials`),
      ...Array.from({ length: 200 }, () => randomBytes(24).toString('latin1')),
    ];
    const slots = await withRedisClient({ host: '127.0.0.1', port }, async (client) => {
      const pipeline = client.pipeline();
      for (const key of keys) pipeline.call('CLUSTER', 'KEYSLOT', key);
      return ((await pipeline.exec()) ?? []).map(([error, slot]) => (error ? error.message : slot));
    });
    expect(keys.map((key) => ({ key, slot: slotOfKey(key) }))).toEqual(keys.map((key, i) => ({ key, slot: slots[i] })));
  });
});
