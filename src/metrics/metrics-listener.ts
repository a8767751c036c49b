import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

// The metrics' own listener: GET /metrics in Prometheus's text format, nothing else. It is not the
// public port (nothing there serves metrics) and listens on loopback unless told otherwise: what a
// process serves, how often and how fast is for its monitoring, not for everyone.

export interface MetricsListener {
  /** http://host:port of the listener (useful with port 0). */
  url: string;
  close(): Promise<void>;
}

/** `read` gives the text to serve and its content type, at each scrape. */
export async function startMetricsListener(read: () => Promise<{ text: string; contentType: string }>, host: string, port: number, onError: (error: unknown) => void): Promise<MetricsListener> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('Method not allowed: GET /metrics\n');
      return;
    }
    read().then(
      ({ text, contentType }) => res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      (error: unknown) => {
        onError(error);
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('The metrics could not be read: see the log\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: Error) => reject(new Error(`the metrics cannot listen on ${host}:${port} (TESSERA_METRICS_HOST, TESSERA_METRICS_PORT): ${error.message}`, { cause: error })));
    server.listen(port, host, () => {
      server.removeAllListeners('error');
      server.on('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
