import { describe, expect, it } from '@jest/globals';
import { sentinelTlsOptions, tlsOptions } from '../../../../src/store/redis/connection.ts';

describe('tlsOptions', () => {
  it('gives Node the CA, the client certificate and the name to check, and always verifies', () => {
    expect(tlsOptions({})).toEqual({ rejectUnauthorized: true });
    expect(tlsOptions({ ca: 'CA', cert: 'CERT', key: 'KEY', serverName: 'redis.internal' })).toEqual({ ca: 'CA', cert: 'CERT', key: 'KEY', servername: 'redis.internal', rejectUnauthorized: true });
  });

  it('refuses a client certificate without its key', () => {
    expect(() => tlsOptions({ cert: 'CERT' })).toThrow(/needs both its certificate and its key/);
  });

  it('through Sentinel, sets TLS to the master and replicas and to the sentinels apart', () => {
    expect(sentinelTlsOptions(undefined, undefined)).toEqual({});
    expect(sentinelTlsOptions({ ca: 'CA' }, undefined)).toEqual({ tls: { ca: 'CA', rejectUnauthorized: true }, enableTLSForSentinelMode: true });
    expect(sentinelTlsOptions(undefined, { ca: 'CA' })).toEqual({ sentinelTLS: { ca: 'CA', rejectUnauthorized: true } });
  });
});
