import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root (bench/lib/../..). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Progress for the person running the benchmark: stderr, with the time since the start. */
const startedAt = Date.now();
export function progress(message: string): void {
  process.stderr.write(`[bench ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);
}

/**
 * A load generator or helper in a process of its own (bench/load/*.ts): it reads its input as JSON
 * on stdin and writes its result as one JSON line on stdout; its stderr is passed through.
 */
export interface RunningChild<T> {
  child: ChildProcess;
  result: Promise<T>;
  /** Asks it to finish (SIGTERM): it stops its work and writes its result. */
  stop(): void;
}

export function startChild<T>(script: string, input: unknown, options: { nodeArgs?: string[] } = {}): RunningChild<T> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), resolve(ROOT, script)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const result = new Promise<T>((resolveResult, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) {
        reject(new Error(`${script} exited with ${code ?? signal}`));
        return;
      }
      try {
        resolveResult(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${script} wrote no result: ${out.slice(0, 500)}`));
      }
    });
  });
  child.stdin!.end(JSON.stringify(input));
  return { child, result, stop: () => child.kill('SIGTERM') };
}

export function runChild<T>(script: string, input: unknown): Promise<T> {
  return startChild<T>(script, input).result;
}

/** In a child: its input, read from stdin. */
export async function readInput<T>(): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
}

/** In a child: its result, as the last line of stdout. */
export function writeResult(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** A server in a process of its own. */
export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  /** The last of what it wrote on stderr. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after a few seconds; resolves when it has exited. */
  stop(): Promise<void>;
}

/**
 * Starts `node <args>` and waits until it is ready: `ready(stdoutSoFar)` returns the URL once the
 * process says it listens (or the caller polls it itself and passes a URL-returning probe).
 */
export function startServer(args: string[], env: Record<string, string>, ready: (stdout: string) => Promise<string | undefined> | string | undefined, timeoutMs = 60_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
    if (err.length > 20_000) err = err.slice(-10_000);
  });
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolveStart, reject) => {
    const deadline = Date.now() + timeoutMs;
    let done = false;
    child.once('exit', (code) => {
      if (!done) reject(new Error(`${args.join(' ')} exited with ${code} before it was ready:\n${out.slice(-2000)}\n${err.slice(-4000)}`));
      done = true;
    });
    const check = async () => {
      if (done) return;
      const url = await ready(out);
      if (url) {
        done = true;
        // Keep the pipes drained (a full pipe would block the server), but stop keeping what it says.
        child.stdout!.removeAllListeners('data').resume();
        resolveStart({ child, pid: child.pid!, url, stderr: () => err, stop });
        return;
      }
      if (Date.now() > deadline) {
        done = true;
        child.kill('SIGKILL');
        reject(new Error(`${args.join(' ')} was not ready within ${timeoutMs} ms:\n${out.slice(-2000)}\n${err.slice(-4000)}`));
        return;
      }
      setTimeout(() => void check(), 100);
    };
    void check();
  });
}

/** A server that prints `{"listening":"http://…"}` on stdout (the reference servers). */
export function listeningLine(stdout: string): string | undefined {
  const match = /\{"listening":"(http:\/\/[^"]+)"\}/.exec(stdout);
  return match?.[1];
}

/** Resident memory of a process, from /proc/<pid>/status: VmRSS and VmHWM (the peak), in bytes. */
export function processMemory(pid: number): { rssBytes: number; peakRssBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rssBytes: field('VmRSS'), peakRssBytes: field('VmHWM') };
}

export const sleep = (ms: number) => new Promise<void>((resolveSleep) => setTimeout(resolveSleep, ms));
