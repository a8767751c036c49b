import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { ledgerLog, recordConfigSecrets } from './secret-ledger.ts';
import { RUN_SETTINGS } from './services.ts';

const MAIN = resolve('src/main.ts');

/** `node src/main.ts` running, whether or not it listens. */
export interface RunningProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once stdout holds `count` lines matching `pattern` (with those lines); rejects after `timeoutMs`. */
  waitForLines(pattern: RegExp, count?: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** Sends SIGTERM (unless it has exited) and resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface ServerProcess extends RunningProcess {
  url: string;
}

/** Spawns `node src/main.ts` — the real server, exactly as `npm start` does — with test-sized settings under `env`. */
export function spawnServerProcess(env: Record<string, string>, options: { cwd?: string } = {}): RunningProcess {
  const fullEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: '0', HOST: '127.0.0.1', TESSERA_ARGON2_MEMORY_KIB: '8192', TESSERA_ARGON2_TIME_COST: '1', ...RUN_SETTINGS, ...env };
  recordConfigSecrets(fullEnv);
  const child = spawn(process.execPath, [MAIN], { cwd: options.cwd, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  // Its log (standard output) and anything on standard error also go to the secret ledger, when it is on.
  const ledgerOut = ledgerLog('server-stdout');
  const ledgerErr = ledgerLog('server-stderr');
  child.stdout!.on('data', (d: Buffer) => ((out += d.toString()), ledgerOut?.(d)));
  child.stderr!.on('data', (d: Buffer) => ((err += d.toString()), ledgerErr?.(d)));
  let closed = false;
  child.on('close', () => (closed = true));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLines: (pattern, count = 1, timeoutMs = 30_000) =>
      new Promise((resolveLines, rejectLines) => {
        // Complete lines only: the last piece may be a line still being written.
        const matching = () => out.split('\n').slice(0, -1).filter((line) => pattern.test(line));
        let settled = false;
        const finish = (outcome: () => void) => {
          if (settled) return;
          settled = true;
          child.stdout!.off('data', check);
          child.off('close', exitedFirst);
          clearTimeout(giveUp);
          outcome();
        };
        // The listener above was added first, so `out` already holds the new data.
        const check = () => {
          const lines = matching();
          if (lines.length >= count) finish(() => resolveLines(lines));
        };
        const exitedFirst = (code: number | null) => finish(() => rejectLines(new Error(`exited with ${code} before ${count} line(s) matching ${pattern}:\n${out}\n${err}`)));
        const giveUp = setTimeout(() => finish(() => rejectLines(new Error(`waited ${timeoutMs} ms for ${count} line(s) matching ${pattern}, found ${matching().length}:\n${out}\n${err}`))), timeoutMs);
        child.stdout!.on('data', check);
        // 'close', not 'exit': by then the output has been read to its end.
        child.on('close', exitedFirst);
        check();
        if (closed) exitedFirst(child.exitCode);
      }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Starts `node src/main.ts` and waits for its "listening" log line to learn the port. */
export async function startServerProcess(env: Record<string, string>, options: { cwd?: string; timeoutMs?: number } = {}): Promise<ServerProcess> {
  const running = spawnServerProcess(env, options);
  try {
    const [line] = await running.waitForLines(/"msg":"Tessera is listening"/, 1, options.timeoutMs ?? 30_000);
    const url = (JSON.parse(line!) as { url: string }).url;
    return { ...running, url };
  } catch {
    const code = running.child.exitCode;
    if (code !== null) throw new Error(`server exited with ${code} before listening:\n${running.stdout()}\n${running.stderr()}`);
    running.child.kill('SIGKILL');
    throw new Error(`server did not start:\n${running.stdout()}\n${running.stderr()}`);
  }
}
