import { afterEach, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { Agent, createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createConnectionDrain, type ConnectionDrain } from '../../../src/http/connection-drain.ts';

const QUIET_MS = 30;

describe('connection drain', () => {
  let server: Server;
  let drain: ConnectionDrain;
  let agent: Agent;
  let port: number;
  /** Requests to /slow wait for this to be called. */
  let releaseSlow: () => void;
  let slowArrived: Promise<void>;

  async function start(idleQuietMs = QUIET_MS, now?: () => number) {
    let arrived!: () => void;
    slowArrived = new Promise((resolve) => (arrived = resolve));
    const released = new Promise<void>((resolve) => (releaseSlow = resolve));
    server = createServer();
    drain = createConnectionDrain(server, { idleQuietMs, ...(now ? { now } : {}) });
    server.on(
      'request',
      drain.handle((req, res) => {
        if (req.url === '/slow') {
          arrived();
          void released.then(() => res.end('slow'));
        } else res.end('fast');
      }),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
  }

  function get(path: string): Promise<{ res: IncomingMessage; body: string }> {
    return new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ res, body }));
      })
        .on('error', reject)
        .end();
    });
  }

  afterEach(() => {
    agent?.destroy();
    server?.closeAllConnections();
    server?.close();
  });

  it('lets a request in flight finish however long it takes, answered with Connection: close, then is drained', async () => {
    await start();
    const slow = get('/slow');
    await slowArrived;
    const drained = drain.drain(60_000);
    // Many quiet periods pass while the request is in flight: its connection is not cut.
    await sleep(QUIET_MS * 5);
    releaseSlow();
    const { res, body } = await slow;
    expect(body).toBe('slow');
    expect(res.headers.connection).toBe('close');
    await expect(drained).resolves.toBe('drained');
  });

  it('closes a quiet keep-alive connection without waiting for the grace period', async () => {
    await start();
    const { res } = await get('/fast');
    expect(res.headers.connection).toBe('keep-alive');
    await expect(drain.drain(60_000)).resolves.toBe('drained');
    expect(server.listening).toBe(false);
  });

  it('closes at once a connection that has been quiet for longer than the quiet period', async () => {
    let clock = 0;
    // A quiet period far longer than the test: only the clock can have made the connection quiet.
    await start(600_000, () => clock);
    await get('/fast');
    clock += 600_000;
    await expect(drain.drain(600_000)).resolves.toBe('drained');
  });

  it('answers a request arriving on an open connection while draining, with Connection: close', async () => {
    // A long quiet period: the connection must still be open when the request arrives.
    await start(10_000);
    await get('/fast');
    releaseSlow();
    const drained = drain.drain(60_000);
    const { res, body } = await get('/fast');
    expect(body).toBe('fast');
    expect(res.headers.connection).toBe('close');
    await expect(drained).resolves.toBe('drained');
  });

  it('cuts what is still in flight when the grace period ends', async () => {
    await start();
    const slow = get('/slow');
    await slowArrived;
    await expect(drain.drain(QUIET_MS)).resolves.toBe('timeout');
    await expect(slow).rejects.toThrow(/socket hang up|ECONNRESET/);
  });
});
