import pg from 'pg';
import { refuseNulCharacters, type Database, type Queryable, type QueryResult } from './database.ts';
import { redactUrl } from '../../config/load.ts';

// BIGINT (int8) columns are parsed into numbers, as PGlite does, so both drivers give repositories
// the same row shapes. Tessera's int8 values (identity columns, counters) stay far below 2^53.
const INT8_OID = 20;
const sameTypesAsPGlite = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

function wrap(client: pg.ClientBase | pg.Pool): Queryable {
  return {
    async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
      refuseNulCharacters(params);
      const result = await client.query(sql, params as unknown[]);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await client.query(sql);
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
  const base = wrap(pool);

  const database: Database = {
    kind: 'postgres',
    query: base.query,
    exec: base.exec,
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    async withAdvisoryLock(key, fn) {
      const client = await pool.connect();
      try {
        await client.query('SELECT pg_advisory_lock($1)', [key]);
        try {
          return await fn(wrap(client));
        } finally {
          await client.query('SELECT pg_advisory_unlock($1)', [key]);
        }
      } finally {
        client.release();
      }
    },
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };

  try {
    await database.ping();
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new Error(`cannot reach PostgreSQL at ${redactUrl(options.url)}: ${(error as Error).message}`, { cause: error });
  }
  return database;
}
