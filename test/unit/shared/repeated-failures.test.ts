import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { StoreUnavailableError } from '../../../src/shared/errors.ts';
import { createLogger } from '../../../src/shared/logger.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { lines, destination };
}

const outage = (operation: string) => new StoreUnavailableError('Redis', `Redis at 127.0.0.1:1 is unavailable (ECONNREFUSED, reconnecting); ${operation} was not run`);

describe('repeated failures in the log', () => {
  it('writes the first failure of a cause whole, then one line per interval with the count', () => {
    let now = 0;
    const { lines, destination } = capture();
    const logger = createLogger({ level: 'info', destination, repeats: { intervalMs: 10_000, clock: () => now } });
    for (let i = 0; i < 1000; i++) logger.child({ reqId: `r${i}` }).error({ err: outage(i % 2 ? 'GET' : 'SET') }, 'a store is unavailable');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, reqId: 'r0', msg: 'a store is unavailable', err: { type: 'StoreUnavailableError', stack: expect.stringContaining('StoreUnavailableError') } });

    now += 10_000;
    logger.child({ reqId: 'late' }).error({ err: outage('GET') }, 'a store is unavailable');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ level: 50, cause: 'Redis unavailable', repeats: 1000, seconds: 10, msg: '1000 more like this in 10 s: a store is unavailable' });
    expect(lines[1]).not.toHaveProperty('reqId');
    expect(lines[1]).not.toHaveProperty('err');
  });

  it('counts each cause and message apart, and never holds back lines without an error', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ level: 'info', destination, repeats: { intervalMs: 10_000, clock: () => 0 } });
    for (let i = 0; i < 10; i++) {
      logger.error({ err: outage('GET') }, 'a store is unavailable');
      logger.error({ err: new StoreUnavailableError('PostgreSQL', 'PostgreSQL at x is unavailable: ECONNREFUSED') }, 'a store is unavailable');
      logger.error({ err: new TypeError('x is not a function') }, 'unhandled error');
      logger.error({ err: new TypeError('x is not a function') }, 'token request failed');
      logger.error({ status: 503 }, 'request failed');
      logger.info({ n: i }, 'request');
    }
    const whole = lines.filter((line) => line.err);
    expect(whole.map((line) => [line.msg, (line.err as { message: string }).message])).toEqual([
      ['a store is unavailable', 'Redis at 127.0.0.1:1 is unavailable (ECONNREFUSED, reconnecting); GET was not run'],
      ['a store is unavailable', 'PostgreSQL at x is unavailable: ECONNREFUSED'],
      ['unhandled error', 'x is not a function'],
      ['token request failed', 'x is not a function'],
    ]);
    expect(lines.filter((line) => line.msg === 'request failed')).toHaveLength(10);
    expect(lines.filter((line) => line.msg === 'request')).toHaveLength(10);
  });

  it('forgets the oldest cause past maxCauses, reporting its count first', () => {
    const { lines, destination } = capture();
    const logger = createLogger({ level: 'info', destination, repeats: { intervalMs: 10_000, clock: () => 0, maxCauses: 2 } });
    for (const message of ['a', 'a', 'a', 'b', 'c']) logger.error({ err: new Error(message) }, 'failed');
    expect(lines.map((line) => line.msg)).toEqual(['failed', 'failed', '2 more like this in 0 s: failed', 'failed']);
  });
});
