import { AppError } from '../../shared/errors.ts';

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

/**
 * PostgreSQL's text and jsonb cannot hold U+0000 and refuse a parameter with it as an error of
 * the server's. It can only come from a client (a %00 in a path or a form): refused as bad input,
 * by both drivers, before the query is sent.
 */
export function refuseNulCharacters(params: readonly unknown[] | undefined): void {
  if (params?.some(holdsNul)) throw AppError.badRequest('Text may not contain the NUL character (U+0000).');
}

function holdsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(holdsNul);
  if (value !== null && typeof value === 'object' && !(value instanceof Date) && !(value instanceof Uint8Array)) return JSON.stringify(value).includes('\\u0000');
  return false;
}
