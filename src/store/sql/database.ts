/**
 * The durable store: PostgreSQL through `pg` when DATABASE_URL is set, otherwise PGlite (the same
 * PostgreSQL, compiled to WebAssembly) persisted in a data directory. Both speak one SQL dialect,
 * so repositories are written once against this interface.
 */
export interface QueryResult<R> {
  rows: R[];
  /** Rows inserted, updated or deleted (or returned, for a SELECT). */
  rowCount: number;
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs fn in one transaction on one connection; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs fn on one connection while holding the session-level advisory lock `key`, waiting for
   * other holders (other nodes) to release it first.
   */
  withAdvisoryLock<T>(key: number, fn: (connection: Queryable) => Promise<T>): Promise<T>;
  /** Resolves when the database answers; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
