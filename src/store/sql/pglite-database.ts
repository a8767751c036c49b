import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { refuseNulCharacters, type Database, type Queryable, type QueryResult } from './database.ts';

type PGliteLike = Pick<PGlite, 'query' | 'exec'> | Transaction;

function wrap(db: PGliteLike): Queryable {
  return {
    async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
      refuseNulCharacters(params);
      const result = await db.query<R>(sql, params);
      const rowCount = result.affectedRows && result.affectedRows > 0 ? result.affectedRows : result.rows.length;
      return { rows: result.rows, rowCount };
    },
    async exec(sql: string): Promise<void> {
      await db.exec(sql);
    },
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * PGlite is one process's database: a second process opening the same directory would corrupt it.
 * A lock file holding the owner's pid keeps a second Tessera (or the admin CLI while the server
 * runs) out, with a message that says what to do; a lock left by a dead process is taken over.
 */
async function lockDataDirectory(dataDir: string): Promise<() => Promise<void>> {
  const lockFile = join(dataDir, 'tessera.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockFile, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return async () => {
        await unlink(lockFile).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (owner && owner !== process.pid && processAlive(owner)) {
        throw new Error(
          `the embedded database in ${dataDir} is in use by process ${owner}. ` +
            'Stop that Tessera first, or run Tessera on PostgreSQL (DATABASE_URL) to share the database between processes.',
        );
      }
      await unlink(lockFile).catch(() => undefined);
    }
  }
  throw new Error(`could not lock the embedded database in ${dataDir}`);
}

export interface PGliteOptions {
  /** A directory on disk, or undefined for a database that lives in memory only (tests). */
  dataDir?: string;
}

export async function createPGliteDatabase(options: PGliteOptions): Promise<Database> {
  let unlock: () => Promise<void> = async () => undefined;
  if (options.dataDir) {
    await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
    unlock = await lockDataDirectory(options.dataDir);
  }
  let db: PGlite;
  try {
    db = await PGlite.create(options.dataDir ? join(options.dataDir, 'pgdata') : undefined);
  } catch (error) {
    await unlock();
    throw new Error(`cannot open the embedded database in ${options.dataDir ?? 'memory'}: ${(error as Error).message}`, { cause: error });
  }
  const base = wrap(db);
  let closed = false;

  return {
    kind: 'pglite',
    query: base.query,
    exec: base.exec,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    // PGlite has a single connection, so holding the lock for fn's duration is what pg does too.
    async withAdvisoryLock(key, fn) {
      await db.query('SELECT pg_advisory_lock($1)', [key]);
      try {
        return await fn(base);
      } finally {
        await db.query('SELECT pg_advisory_unlock($1)', [key]);
      }
    },
    async ping() {
      if (closed) throw new Error('the embedded database is closed');
      await db.query('SELECT 1');
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.close();
      await unlock();
    },
  };
}
