import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

/** One answer: status, body, and how long it took (ms). `status` 0 is a connection error or timeout. */
export interface Answer {
  status: number;
  body: string;
  ms: number;
  error?: string;
}

/**
 * A keep-alive HTTP/1.1 client for the stateful load generators (refresh chains, device polls,
 * login storms, bulk creation): at most `connections` sockets, reused.
 */
export function createHttpClient(baseUrl: string, connections: number, timeoutMs = 10_000) {
  const base = new URL(baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });

  function send(method: string, path: string, body: string | undefined, headers: Record<string, string> = {}): Promise<Answer> {
    const started = performance.now();
    return new Promise((resolve) => {
      let settled = false;
      const finish = (answer: Omit<Answer, 'ms'>) => {
        if (settled) return;
        settled = true;
        resolve({ ...answer, ms: performance.now() - started });
      };
      const req = request(
        {
          host: base.hostname,
          port: base.port,
          method,
          path,
          agent,
          headers: { ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {}), ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (error) => finish({ status: 0, body: '', error: error.message }));
        },
      );
      req.setTimeout(timeoutMs, () => {
        req.destroy(new Error('timeout'));
      });
      req.on('error', (error) => finish({ status: 0, body: '', error: error.message }));
      req.end(body);
    });
  }

  return {
    post: (path: string, body: string, headers?: Record<string, string>) => send('POST', path, body, headers),
    get: (path: string, headers?: Record<string, string>) => send('GET', path, undefined, headers),
    close: () => agent.destroy(),
  };
}

export type HttpClient = ReturnType<typeof createHttpClient>;

/** Parses a JSON answer; undefined when it is not JSON. */
export function json(answer: Answer): Record<string, unknown> | undefined {
  try {
    return JSON.parse(answer.body) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/**
 * Runs `loops` concurrent loops of `step` until `seconds` have passed (a loop's step may also end
 * it early by returning false); resolves when every loop has finished its last step.
 */
export async function forSeconds(seconds: number, loops: number, step: (loop: number) => Promise<boolean | void>): Promise<number> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: loops }, async (_, loop) => {
      while (performance.now() < deadline) {
        if ((await step(loop)) === false) return;
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

export const basicAuth = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
