import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createReporterKeys, KeysUnavailableError } from '../../../src/leaked-tokens/reporter-keys.ts';
import { createLogger } from '../../../src/shared/logger.ts';

// A reporter's keys read from a real HTTP endpoint: how often it is asked (never more than once
// per interval, and one read at a time, whatever ids are presented), what is trusted, and what
// happens when it cannot be reached.

const logger = createLogger({ level: 'fatal', destination: new Writable({ write: (_c, _e, done) => done() }) });

function p256() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, pem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

describe('reporter keys', () => {
  let server: Server;
  let url: string;
  let document: unknown;
  let status = 200;
  let reads = 0;
  /** Holds answers back until released, to catch concurrent reads. */
  let gate: Promise<void> = Promise.resolve();
  const key = p256();
  const body = Buffer.from('[{"token":"x","type":"t","url":"","source":"content"}]');
  const signature = sign('sha256', body, key.privateKey);

  beforeAll(async () => {
    server = createServer((_req, res) => {
      reads += 1;
      void gate.then(() => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(typeof document === 'string' ? document : JSON.stringify(document));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/keys`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  function keys(now: { ms: number }) {
    reads = 0;
    return createReporterKeys({ name: 'test', keysUrl: url, logger, refreshMs: 60_000, maxAgeMs: 3_600_000, clock: () => now.ms });
  }

  it('verifies over the bytes with the named key, and reads the keys once for any number of concurrent unknown ids', async () => {
    document = { public_keys: [{ key_identifier: 'k1', key: key.pem, is_current: true }] };
    const now = { ms: 0 };
    const reporter = keys(now);
    let release!: () => void;
    gate = new Promise((resolve) => (release = resolve));
    const verdicts = Promise.all([reporter.verify('k1', signature, body), ...Array.from({ length: 50 }, (_, i) => reporter.verify(`forged-${i}`, signature, body))]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    const [first, ...forged] = await verdicts;
    expect(first).toBe('valid');
    expect(new Set(forged)).toEqual(new Set(['unknown_key']));
    expect(reads).toBe(1);
    expect(await reporter.verify('k1', signature, Buffer.concat([body, Buffer.from(' ')]))).toBe('invalid');
    expect(await reporter.verify('k1', Buffer.from('not a signature'), body)).toBe('invalid');
    for (let i = 0; i < 100; i++) await reporter.verify(`forged-again-${i}`, signature, body);
    expect(reads).toBe(1);
    now.ms += 60_000;
    await reporter.verify('forged-later', signature, body);
    await reporter.verify('forged-later-2', signature, body);
    expect(reads).toBe(2);
  });

  it('trusts only EC P-256 keys', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    document = {
      public_keys: [
        { key_identifier: 'rsa', key: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString() },
        { key_identifier: 'p384', key: p384.publicKey.export({ type: 'spki', format: 'pem' }).toString() },
        { key_identifier: 'garbage', key: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' },
      ],
    };
    const reporter = keys({ ms: 0 });
    expect(await reporter.verify('rsa', sign('sha256', body, rsa.privateKey), body)).toBe('unknown_key');
    expect(await reporter.verify('p384', sign('sha256', body, p384.privateKey), body)).toBe('unknown_key');
    expect(await reporter.verify('garbage', signature, body)).toBe('unknown_key');
  });

  it('says the keys are unavailable when they were never read, and keeps using keys read before', async () => {
    const now = { ms: 0 };
    const reporter = keys(now);
    status = 500;
    await expect(reporter.verify('k1', signature, body)).rejects.toThrow(KeysUnavailableError);
    // Within the interval: not asked again, still unavailable.
    await expect(reporter.verify('k1', signature, body)).rejects.toThrow(KeysUnavailableError);
    expect(reads).toBe(1);
    status = 200;
    document = 'not json';
    now.ms += 60_000;
    await expect(reporter.verify('k1', signature, body)).rejects.toThrow(/is not \{ public_keys/);
    document = { public_keys: [{ key_identifier: 'k1', key: key.pem }] };
    now.ms += 60_000;
    expect(await reporter.verify('k1', signature, body)).toBe('valid');
    // An hour on, the endpoint is away: the keys read before still serve.
    status = 503;
    now.ms += 3_600_000;
    expect(await reporter.verify('k1', signature, body)).toBe('valid');
    expect(reads).toBe(4);
    status = 200;
  });
});
