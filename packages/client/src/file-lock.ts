import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TesseraClientError } from './errors.ts';

export interface FileLockOptions {
  /** A lock whose file was not touched for this long is taken over; default 30 000 ms. The holder touches it every third of that. */
  staleMs?: number;
  /** How long to wait for the lock before giving up; default 60 000 ms. */
  timeoutMs?: number;
}

/** Who holds a lock: written into the lock file. */
interface LockOwner {
  pid: number;
  host: string;
  nonce: string;
  createdAt: string;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    return typeof value.pid === 'number' && typeof value.host === 'string' && typeof value.nonce === 'string' ? (value as LockOwner) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process of this machine is still running (EPERM: it is, under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const isCode = (error: unknown, code: string) => (error as NodeJS.ErrnoException | undefined)?.code === code;

/**
 * Takes a stale lock away: one not touched for `staleMs`, or one whose holder on this machine
 * has died. The file is first renamed aside (atomic), then checked to be the very file judged
 * stale; if another process had meanwhile replaced it with a fresh lock, that one is put back.
 * Returns whether the lock file is gone.
 */
async function breakIfStale(lockPath: string, staleMs: number): Promise<boolean> {
  let judged;
  let text;
  try {
    judged = await stat(lockPath);
    text = await readFile(lockPath, 'utf8');
  } catch (error) {
    if (isCode(error, 'ENOENT')) return true;
    throw error;
  }
  const owner = parseOwner(text);
  const old = Date.now() - judged.mtimeMs > staleMs;
  const dead = owner !== undefined && owner.host === hostname() && !alive(owner.pid);
  if (!old && !dead) return false;

  const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(lockPath, aside);
  } catch (error) {
    if (isCode(error, 'ENOENT')) return true;
    throw error;
  }
  const moved = await stat(aside);
  const same = moved.ino === judged.ino && moved.mtimeMs === judged.mtimeMs && (await readFile(aside, 'utf8')) === text;
  if (!same) await link(aside, lockPath).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
  return same;
}

function describeHolder(text: string | undefined): string {
  const owner = text === undefined ? undefined : parseOwner(text);
  return owner ? `process ${owner.pid} on ${owner.host} since ${owner.createdAt}` : 'another process';
}

/**
 * Runs `task` while holding an exclusive lock: the file `lockPath`, created with O_EXCL. Other
 * processes wait (with a short, growing, jittered backoff) until it is removed, or take it over
 * once it is stale. The holder touches the file while the task runs, so a slow task is not
 * mistaken for a dead one.
 */
export async function withFileLock<T>(lockPath: string, task: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const staleMs = options.staleMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const owner: LockOwner = { pid: process.pid, host: hostname(), nonce: randomBytes(12).toString('hex'), createdAt: new Date().toISOString() };
  const started = Date.now();
  let backoff = 10;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      try {
        await handle.writeFile(JSON.stringify(owner));
      } finally {
        await handle.close();
      }
      break;
    } catch (error) {
      if (isCode(error, 'ENOENT')) {
        await mkdir(dirname(lockPath), { recursive: true, mode: 0o700 });
        continue;
      }
      if (!isCode(error, 'EEXIST')) throw new TesseraClientError('credentials_file', `cannot create the lock file ${lockPath}: ${(error as Error).message}`, { cause: error });
    }
    if (await breakIfStale(lockPath, staleMs)) continue;
    if (Date.now() - started > timeoutMs) {
      const holder = describeHolder(await readFile(lockPath, 'utf8').catch(() => undefined));
      throw new TesseraClientError('credentials_file', `gave up waiting for the lock ${lockPath} after ${Math.round(timeoutMs / 1000)} s: it is held by ${holder} (delete the file if that process is gone)`);
    }
    await sleep(backoff / 2 + Math.random() * backoff);
    backoff = Math.min(backoff * 2, 250);
  }

  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => undefined);
  }, Math.max(100, Math.floor(staleMs / 3)));
  heartbeat.unref();
  try {
    return await task();
  } finally {
    clearInterval(heartbeat);
    // Only our own lock is removed: a lock taken over as stale now belongs to someone else.
    const text = await readFile(lockPath, 'utf8').catch(() => undefined);
    if (text !== undefined && parseOwner(text)?.nonce === owner.nonce) await unlink(lockPath).catch(() => undefined);
  }
}
