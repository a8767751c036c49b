import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

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

/** Starts a Redis program (redis-server, redis-sentinel); resolves once it printed readyText. */
export function startRedisProcess(program: string, readyText: string, args: string[]): Promise<ChildProcess> {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
