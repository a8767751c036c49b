import { readdir, readFile, stat } from 'node:fs/promises';
import { setPriority } from 'node:os';
import type { Logger } from 'pino';

/**
 * Gives libuv's thread-pool threads, where argon2 hashes passwords, a higher nice value than the
 * event loop, so that logins cannot starve the token endpoints (docs/design/password-hashing.md).
 * Linux only, where a nice value is per thread; elsewhere nothing changes. Returns how many threads changed.
 */
export async function lowerHashingPriority(niceness: number, logger: Logger): Promise<number> {
  if (process.platform !== 'linux' || niceness <= 0) return 0;
  // Any threadpool work starts the pool: libuv creates all of its threads on first use.
  await stat('.');
  let changed = 0;
  try {
    for (const task of await readdir('/proc/self/task')) {
      const name = (await readFile(`/proc/self/task/${task}/comm`, 'utf8').catch(() => '')).trim();
      if (name !== 'libuv-worker') continue;
      setPriority(Number(task), niceness);
      changed += 1;
    }
  } catch (error) {
    logger.warn({ reason: error instanceof Error ? error.message : String(error) }, 'could not lower the priority of the password-hashing threads');
  }
  return changed;
}

/** The nice value of one of this process's threads (for tests and diagnostics), or null. */
export async function threadNiceness(task: string): Promise<number | null> {
  const statLine = await readFile(`/proc/self/task/${task}/stat`, 'utf8').catch(() => null);
  // Field 19 (nice) of the stat file; the command name (field 2) may contain spaces, so count after its ')'.
  const fields = statLine?.slice(statLine.lastIndexOf(')') + 2).split(' ');
  return fields ? Number(fields[16]) : null;
}
