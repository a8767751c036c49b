import { request as httpRequest } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';

// TCP proxies for tests: one in front of a service (PostgreSQL) that a test can cut, to see Tessera
// without the service, and restore on the same port, without touching the service itself; and a
// load balancer in front of several Tessera nodes, to restart them one by one under load.

export interface TcpProxy {
  readonly port: number;
  /** Closes every connection and refuses new ones (ECONNREFUSED), as a server that went away. */
  cut(): Promise<void>;
  /** Accepts connections again on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const serve = (): Server =>
    createServer((client) => {
      const upstream = connect(target.port, target.host);
      track(client);
      track(upstream);
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  const listen = (server: Server, port: number) => new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });

  let server: Server | undefined = serve();
  await listen(server, 0);
  const { port } = server.address() as { port: number };
  const stop = async () => {
    const closing = server;
    server = undefined;
    const closed = closing ? new Promise((resolve) => closing.close(resolve)) : Promise.resolve();
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  return {
    port,
    cut: stop,
    async restore() {
      if (server) return;
      server = serve();
      await listen(server, port);
    },
    close: stop,
  };
}

export interface Backend {
  host: string;
  port: number;
}

export interface BalancingProxy {
  readonly port: number;
  /** How many client connections each backend has been given, by index. */
  readonly connectionsTo: readonly number[];
  /** Client connections no backend accepted (closed at once, as a balancer answers 502). */
  readonly unrouted: number;
  /** Whether the health check last found the backend ready (only then does it get new connections). */
  isReady(index: number): boolean;
  /** Resolves once the health check finds the backend `ready` (true) or not (false). */
  waitUntilReady(index: number, ready: boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A TCP load balancer in front of several HTTP nodes, behaving as an operator's would:
 * - a health check polls each backend's readiness path (GET, a new connection each time) every
 *   `checkIntervalMs`; a backend whose check fails (not 200, refused, no answer within a second) is
 *   marked down and gets no new connections until a check passes again;
 * - each new client connection goes to the next ready backend in turn (round robin), and on to the
 *   next one when the backend refuses it (nothing has been sent yet, so that is safe);
 * - the bytes are relayed as they are; a backend's orderly close (FIN) reaches the client as one,
 *   after everything the backend sent, and a reset reaches it as a reset.
 */
export async function startBalancingProxy(backends: readonly Backend[], options: { readinessPath?: string; checkIntervalMs?: number } = {}): Promise<BalancingProxy> {
  const { readinessPath = '/readyz', checkIntervalMs = 100 } = options;
  const ready = backends.map(() => false);
  const connectionsTo = backends.map(() => 0);
  const sockets = new Set<Socket>();
  let unrouted = 0;
  let next = 0;
  let closing = false;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };

  const check = (backend: Backend) =>
    new Promise<boolean>((resolve) => {
      const req = httpRequest({ host: backend.host, port: backend.port, path: readinessPath, agent: false, timeout: 1000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
        res.on('error', () => resolve(false));
      });
      req.on('timeout', () => req.destroy(new Error('no answer')));
      req.on('error', () => resolve(false));
      req.end();
    });
  const checkAll = async () => {
    const results = await Promise.all(backends.map(check));
    results.forEach((result, i) => (ready[i] = result));
  };
  let checking: Promise<void> = checkAll();
  await checking;
  const checker = setInterval(() => {
    checking = checking.then(() => (closing ? undefined : checkAll()));
  }, checkIntervalMs);

  /** Relays `client` to the first of `candidates` that accepts a connection. */
  const route = (client: Socket, candidates: number[]) => {
    const index = candidates.shift();
    if (index === undefined || client.destroyed) {
      unrouted++;
      client.destroy();
      return;
    }
    const upstream = connect(backends[index]!.port, backends[index]!.host);
    track(upstream);
    const refused = (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') route(client, candidates);
      else client.resetAndDestroy();
    };
    upstream.once('error', refused);
    upstream.once('connect', () => {
      upstream.off('error', refused);
      // The client gave up meanwhile.
      if (client.destroyed) return upstream.destroy();
      connectionsTo[index]!++;
      // pipe() ends the other side once this one has ended, after what it had sent.
      client.pipe(upstream);
      upstream.pipe(client);
      upstream.on('error', () => client.resetAndDestroy());
      client.on('error', () => upstream.resetAndDestroy());
    });
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    track(client);
    client.on('error', () => client.destroy());
    const start = next;
    next = (next + 1) % backends.length;
    const order = backends.map((_, i) => (start + i) % backends.length).filter((i) => ready[i]);
    route(client, order);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });

  return {
    port: (server.address() as { port: number }).port,
    connectionsTo,
    get unrouted() {
      return unrouted;
    },
    isReady: (index) => ready[index]!,
    async waitUntilReady(index, wanted, timeoutMs = 60_000) {
      for (const deadline = Date.now() + timeoutMs; ready[index] !== wanted; ) {
        if (Date.now() > deadline) throw new Error(`backend ${index} was not ${wanted ? 'ready' : 'down'} within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async close() {
      closing = true;
      clearInterval(checker);
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      await Promise.all([closed, checking]);
    },
  };
}
