import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './private-redis.ts';

// A PostgreSQL server of a test file's own (Debian's initdb and pg_ctl, in a temporary directory,
// on a free loopback port, trust authentication), so that it can be stopped and started again
// under load without touching the machine's shared server.

const run = promisify(execFile);

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  /** pg_ctl stop -m immediate: the server goes away at once, as a crash would; resolves with the time. */
  stop(): Promise<number>;
  /** pg_ctl start on the same port and data; resolves, with the time, once it accepts connections. */
  start(): Promise<number>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

/** Debian's server programs for the newest PostgreSQL installed. */
export function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = readdirSync(base).filter((name) => /^\d+(\.\d+)?$/.test(name));
  } catch {
    // No PostgreSQL installed: reported below.
  }
  const newest = versions.sort((a, b) => Number(a) - Number(b)).at(-1);
  if (!newest) throw new Error(`no PostgreSQL server programs under ${base}/<version>/bin (install Debian's postgresql)`);
  return join(base, newest, 'bin');
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'tessera-postgres-'));
  const data = join(dir, 'data');
  const port = await freePort();
  // PostgreSQL refuses to run as root: as root, its files and programs belong to the postgres user.
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? await run('id', ['-u', 'postgres']).then(({ stdout }) => Number(stdout.trim())) : undefined;
  const group = asRoot ? await run('id', ['-g', 'postgres']).then(({ stdout }) => Number(stdout.trim())) : undefined;
  if (owner !== undefined) chownSync(dir, owner, group!);
  const pg = (program: string, args: string[]) => run(join(bin, program), args, { uid: owner, gid: group, cwd: dir, env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' } });
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  const start = async () => {
    await pg('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', options, '-w', '-t', '30', 'start']);
    return Date.now();
  };
  const stop = async () => {
    await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    return Date.now();
  };
  try {
    await pg('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
    await start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop,
    start,
    async destroy() {
      await stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
