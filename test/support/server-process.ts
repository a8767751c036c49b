import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { RUN_SETTINGS } from './services.ts';

const MAIN = resolve('src/main.ts');

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once stdout holds `count` lines matching `pattern` (with those lines); rejects after `timeoutMs`. */
  waitForLines(pattern: RegExp, count?: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `node src/main.ts` — the real server, exactly as `npm start` does — and waits for its
 * "listening" log line to learn the port.
 */
export function startServerProcess(env: Record<string, string>, options: { cwd?: string; timeoutMs?: number } = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [MAIN], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: '0', HOST: '127.0.0.1', TESSERA_ARGON2_MEMORY_KIB: '8192', TESSERA_ARGON2_TIME_COST: '1', ...RUN_SETTINGS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start:\n${out}\n${err}`));
    }, options.timeoutMs ?? 30_000);
    const exitedEarly = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${out}\n${err}`));
    };
    child.on('exit', exitedEarly);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /"url":"(http:\/\/[^"]+)".*"msg":"Tessera is listening"/.exec(out);
      if (match) {
        clearTimeout(timer);
        child.off('exit', exitedEarly);
        resolveStart({
          child,
          url: match[1]!,
          stdout: () => out,
          stderr: () => err,
          exited,
          waitForLines: (pattern, count = 1, timeoutMs = 30_000) =>
            new Promise((resolveLines, rejectLines) => {
              const matching = () => out.split('\n').filter((line) => pattern.test(line));
              const check = () => {
                const lines = matching();
                if (lines.length < count) return false;
                child.stdout!.off('data', check);
                clearTimeout(giveUp);
                resolveLines(lines);
                return true;
              };
              const giveUp = setTimeout(() => {
                child.stdout!.off('data', check);
                rejectLines(new Error(`waited ${timeoutMs} ms for ${count} line(s) matching ${pattern}, found ${matching().length}:\n${out}\n${err}`));
              }, timeoutMs);
              // The output's own listener (above) runs first, so `out` already holds the new data.
              if (!check()) child.stdout!.on('data', check);
            }),
          async stop() {
            if (child.exitCode === null) child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
  });
}
