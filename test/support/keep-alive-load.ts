import { Agent, request } from 'node:http';

/** One kind of request the load sends, and what counts as its success. */
export interface LoadCall {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  expect: (status: number, body: string) => boolean;
}

export interface LoadCounts {
  /** Requests sent (each counted once it has come back, failed or not). */
  requests: number;
  /** Answered in full as expected. */
  succeeded: number;
  /** Of those, answered with `Connection: close`. */
  answeredWithClose: number;
  /** Reset, cut off, refused, or answered with an unexpected status: every one counted. */
  failed: number;
}

export interface KeepAliveLoad {
  /** The counts so far. */
  counts(): LoadCounts;
  /** Stops the clients (each finishes the request it has on its way) and gives the counts, with up to 50 failure descriptions. */
  stop(): Promise<LoadCounts & { failures: string[] }>;
}

export interface LoadClient {
  calls: readonly LoadCall[];
  pauseMs?: number;
}

type Outcome = { status: number; body: string; close: boolean } | { error: string };

function send(base: URL, agent: Agent, call: LoadCall): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request({ host: base.hostname, port: base.port, method: call.method, path: call.path, headers: call.headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, close: res.headers.connection === 'close' }));
      res.on('error', (error: NodeJS.ErrnoException) => resolve({ error: `${error.code ?? error.message} mid-answer` }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ error: `${error.code ?? error.message} (${req.reusedSocket ? 'reused' : 'new'} connection)` }));
    req.end(call.body);
  });
}

/**
 * Clients sending requests back to back, each on its own keep-alive connection (node:http Agent,
 * keepAlive, one socket): each client repeats its cycle of `calls`, pausing `pauseMs` after each.
 * A client whose answer says `Connection: close` opens a new connection for the next one.
 */
export function startKeepAliveLoad(base: URL, clients: readonly LoadClient[]): KeepAliveLoad {
  const counts: LoadCounts = { requests: 0, succeeded: 0, answeredWithClose: 0, failed: 0 };
  const failures: string[] = [];
  let stopping = false;
  const fail = (description: string) => {
    counts.failed++;
    if (failures.length < 50) failures.push(`${new Date().toISOString()} ${description}`);
  };
  const run = async ({ calls, pauseMs }: LoadClient) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; !stopping; i++) {
        const call = calls[i % calls.length]!;
        const outcome = await send(base, agent, call);
        counts.requests++;
        if ('error' in outcome) fail(`${call.method} ${call.path}: ${outcome.error}`);
        else if (!call.expect(outcome.status, outcome.body)) fail(`${call.method} ${call.path}: ${outcome.status} ${outcome.body.slice(0, 200)}`);
        else {
          counts.succeeded++;
          if (outcome.close) counts.answeredWithClose++;
        }
        if (pauseMs) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    } finally {
      agent.destroy();
    }
  };
  const running = Promise.all(clients.map(run));
  return {
    counts: () => ({ ...counts }),
    async stop() {
      stopping = true;
      await running;
      return { ...counts, failures };
    },
  };
}
