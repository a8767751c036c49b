import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../../src/config/load.ts';
import { sentinelAddresses } from '../../../src/store/open-stores.ts';

describe('sentinelAddresses', () => {
  it('turns REDIS_SENTINELS into the hosts and ports ioredis takes, IPv6 without its brackets', () => {
    const config = loadConfig({ env: { REDIS_SENTINELS: '10.0.0.1:26379,sentinel-b.internal:26380,[::1]:26381', REDIS_SENTINEL_MASTER: 'tessera' } });
    expect(sentinelAddresses(config.redis.sentinels)).toEqual([
      { host: '10.0.0.1', port: 26379 },
      { host: 'sentinel-b.internal', port: 26380 },
      { host: '::1', port: 26381 },
    ]);
  });
});
