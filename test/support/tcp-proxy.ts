import { connect, createServer, type Server, type Socket } from 'node:net';

// A TCP proxy in front of a service (PostgreSQL) that a test can cut, to see Tessera without the
// service, and restore on the same port, without touching the service itself.

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
