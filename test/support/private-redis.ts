import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';

// A redis-server of a test file's own, so that it can be killed, frozen and restarted.

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A Redis server (or sentinel) that speaks TLS only. */
export interface ServerTls {
  /** The server's certificate and key (also its client certificate towards a master). */
  certFile: string;
  keyFile: string;
  /** The CA that signed the certificates of its clients and peers. */
  caFile: string;
  /** Whether clients must present a certificate signed by caFile (tls-auth-clients). */
  authClients: boolean;
}

/** The arguments (or, without the dashes, configuration lines) that make a server listen with TLS only on port. */
export function tlsServerArgs(port: number, tls: ServerTls): string[] {
  return [
    '--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile,
    '--tls-auth-clients', tls.authClients ? 'yes' : 'no', '--tls-replication', 'yes',
  ];
}

/**
 * Starts redis-server on the port (with extraArgs; with tls, speaking TLS only); resolves once it
 * accepts connections.
 */
export function startRedisServer(port: number, extraArgs: string[] = [], tls?: ServerTls): Promise<ChildProcess> {
  const listen = tls ? tlsServerArgs(port, tls) : ['--port', String(port)];
  return startRedisProcess('redis-server', 'Ready to accept connections', [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs]);
}

/**
 * Starts a Redis program (redis-server, redis-sentinel); resolves once it printed readyText.
 * It runs in a directory of its own, removed when it exits, so that files it writes without a
 * --dir (a replica's copy of its master, dump.rdb) never land in the project's checkout.
 */
export function startRedisProcess(program: string, readyText: string, args: string[]): Promise<ChildProcess> {
  const cwd = mkdtempSync(join(tmpdir(), `tessera-${program}-`));
  const child = spawn(program, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  child.once('exit', () => rmSync(cwd, { recursive: true, force: true }));
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${program} did not start within 10 s:\n${output}`)), 10_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(readyText)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`${program} exited (${code}) before it was ready:\n${output}`)));
  });
}

export async function killRedisServer(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** A redis-server that can be killed and started again on the same port, with its data on disk. */
export interface RestartableRedis {
  port: number;
  url: string;
  /** kill -9 (a no-op when it is down). */
  kill(): Promise<void>;
  /** Starts it again on the same port, with what it had written to disk. */
  restart(): Promise<void>;
  /** Kills it and removes its directory. */
  stop(): Promise<void>;
}

/**
 * Starts a redis-server on a free port that writes every command to its append-only file before
 * answering (appendfsync always), so that a kill -9 and a restart lose nothing it acknowledged,
 * as a production Redis with persistence would.
 */
export async function startRestartableRedis(): Promise<RestartableRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tessera-redis-'));
  const args = ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always'];
  let child: ChildProcess | undefined = await startRedisServer(port, args);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      await killRedisServer(child);
      child = undefined;
    },
    async restart() {
      await killRedisServer(child);
      child = await startRedisServer(port, args);
    },
    async stop() {
      await killRedisServer(child);
      child = undefined;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A short-lived client to one Redis server of a test's own (TLS and password when given), for what
 * the test support checks on it: it never retries and is closed after `use`.
 */
export async function withRedisClient<T>(address: { host: string; port: number }, use: (client: Redis) => Promise<T>, options: { tls?: ConnectionOptions; password?: string } = {}): Promise<T> {
  const { tls, password } = options;
  const client = new Redis({ ...address, ...(tls ? { tls } : {}), ...(password ? { password } : {}), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000, commandTimeout: 5000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
}

/** Polls `probe` every 100 ms until it gives a value (errors count as not yet), at most timeoutMs. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
