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
  /** Requests to /streaming send their headers and a first part, then wait for this. */
  let finishStreaming: () => void;
  let streamingStarted: Promise<void>;

  async function start(idleQuietMs = QUIET_MS) {
    let arrived!: () => void;
    slowArrived = new Promise((resolve) => (arrived = resolve));
    const released = new Promise<void>((resolve) => (releaseSlow = resolve));
    let streaming!: () => void;
    streamingStarted = new Promise((resolve) => (streaming = resolve));
    const streamed = new Promise<void>((resolve) => (finishStreaming = resolve));
    server = createServer();
    drain = createConnectionDrain(server, { idleQuietMs });
    server.on(
      'request',
      drain.handle((req, res) => {
        if (req.url === '/streaming') {
          res.write('partly, ');
          streaming();
          void streamed.then(() => res.end('then all'));
        } else if (req.url === '/slow') {
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

  it('keeps a connection whose answer had begun before the drain until that answer is done, then closes it once quiet', async () => {
    await start();
    const slow = new Promise<{ res: IncomingMessage; body: string }>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/streaming', agent }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ res, body }));
      })
        .on('error', reject)
        .end();
    });
    await streamingStarted;
    const drained = drain.drain(60_000);
    await sleep(QUIET_MS * 5);
    finishStreaming();
    const { res, body } = await slow;
    // Its headers had gone as keep-alive; the connection is closed by the drain once quiet.
    expect({ body, connection: res.headers.connection }).toEqual({ body: 'partly, then all', connection: 'keep-alive' });
    await expect(drained).resolves.toBe('drained');
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
