import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { ledgerLog, recordConfigSecrets, recordPrintedSecrets } from './secret-ledger.ts';

/** The `tessera` command's entry point, run with the test's Node (which runs TypeScript). */
export const CLI = resolve('src/cli/main.ts');
/** Node's arguments to run the CLI from source: the workspace packages (@tessera/client) from theirs too, as `npm run tessera` does. */
export const CLI_ARGS: readonly string[] = ['--conditions=tessera-source', CLI];

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `tessera` command in a child process, as an operator would: nothing of the test's
 * environment but PATH and HOME, light argon2 parameters, `stdin` (or nothing) on standard input.
 */
export function runTessera(args: string[], env: Record<string, string>, stdin?: string): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const fullEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TESSERA_ARGON2_MEMORY_KIB: '8192', TESSERA_ARGON2_TIME_COST: '1', ...env };
    recordConfigSecrets(fullEnv);
    const child = spawn(process.execPath, [...CLI_ARGS, ...args], { env: fullEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    // Standard error is the command's log; standard output is its answer (a secret it was asked for, by design).
    const ledger = ledgerLog('cli-stderr');
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => ((stderr += d.toString()), ledger?.(d)));
    child.on('error', reject);
    child.on('close', (code) => {
      recordPrintedSecrets(stdout);
      resolvePromise({ code, stdout, stderr });
    });
    child.stdin.end(stdin ?? '');
  });
}
