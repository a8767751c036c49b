import pg from 'pg';
import { refuseNulCharacters, type Database, type Queryable, type QueryResult } from './database.ts';
import { redactUrl } from '../../config/load.ts';
import { StoreUnavailableError } from '../../shared/errors.ts';

// BIGINT (int8) columns are parsed into numbers, as PGlite does, so both drivers give repositories
// the same row shapes. Tessera's int8 values (identity columns, counters) stay far below 2^53.
const INT8_OID = 20;
const sameTypesAsPGlite = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** Node's socket errors that mean the server cannot be reached. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** What pg and pg-pool say when a connection cannot be made or was lost. */
const CONNECTION_LOST = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection terminated due to connection timeout)/;

/**
 * Whether a failure says that the server is away rather than that the statement is wrong: a
 * socket error, a lost or refused connection, or SQLSTATE class 08 (connection exception),
 * 57P01–57P03 (shutting down, crashed, starting up) or 53300 (too many connections).
 */
function serverUnavailable(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (UNREACHABLE_CODES.has(code) || code.startsWith('08') || /^57P0[123]$/.test(code) || code === '53300')) return true;
  return typeof message === 'string' && CONNECTION_LOST.test(message);
}

/** Runs a call on the pool, turning "the server is away" into a StoreUnavailableError naming it. */
async function reaching<T>(server: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (!serverUnavailable(error)) throw error;
    const reason = (error as { code?: string; message?: string }).message || (error as { code?: string }).code || String(error);
    throw new StoreUnavailableError('PostgreSQL', `PostgreSQL at ${server} is unavailable: ${reason}`, { cause: error });
  }
}

function wrap(client: pg.ClientBase | pg.Pool, server: string): Queryable {
  return {
    async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
      refuseNulCharacters(params);
      const result = await reaching(server, () => client.query(sql, params as unknown[]));
      return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await reaching(server, () => client.query(sql));
    },
  };
}

export interface PostgresOptions {
  url: string;
  poolSize: number;
  /** How long a query may wait for a connection before failing, so requests never hang. */
  connectionTimeoutMs?: number;
  onError?: (error: Error) => void;
}

/** Opens a pool and checks the server answers; the error names the server without its password. */
export async function createPostgresDatabase(options: PostgresOptions): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    types: sameTypesAsPGlite,
  });
  // An idle client that loses its connection emits on the pool; without a listener that is fatal.
  pool.on('error', (error) => options.onError?.(error));
  const server = redactUrl(options.url);
  const base = wrap(pool, server);
  const connect = () => reaching(server, () => pool.connect());

  const database: Database = {
    kind: 'postgres',
    query: base.query,
    exec: base.exec,
    async transaction(fn) {
      const client = await connect();
      const tx = wrap(client, server);
      try {
        await tx.exec('BEGIN');
        const result = await fn(tx);
        await tx.exec('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    async withAdvisoryLock(key, fn) {
      const client = await connect();
      try {
        // Tried again and again rather than waited for in one statement: a waiting statement holds
        // a snapshot, and a migration's CREATE INDEX CONCURRENTLY (which waits for every older
        // snapshot to end) in the holder's session would wait for it while it waits: a deadlock,
        // as when several workers start on a new database at once.
        for (let delayMs = 20; !(await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [key])).rows[0]!.locked; delayMs = Math.min(delayMs * 2, 500)) {
          await new Promise((resolve) => setTimeout(resolve, delayMs));
        }
        try {
          return await fn(wrap(client, server));
        } finally {
          await client.query('SELECT pg_advisory_unlock($1)', [key]);
        }
      } finally {
        client.release();
      }
    },
    async ping() {
      await base.query('SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };

  try {
    await database.ping();
  } catch (error) {
    await pool.end().catch(() => undefined);
    const reason = error instanceof StoreUnavailableError ? ((error.cause as Error | undefined)?.message ?? error.message) : (error as Error).message;
    throw new Error(`cannot reach PostgreSQL at ${server}: ${reason}`, { cause: error });
  }
  return database;
}
