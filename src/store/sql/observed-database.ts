import { AppError, StoreUnavailableError } from '../../shared/errors.ts';
import type { StoreObserver } from '../store-observer.ts';
import type { Database, Queryable } from './database.ts';

/**
 * The database with each call timed and its failures told to `observe` (the metrics). A refusal
 * of bad input (an AppError, such as a NUL in a parameter) is not the database's failure. A
 * transaction or locked section is timed whole; the queries inside it are not counted again.
 */
export function observedDatabase(database: Database, observe: StoreObserver): Database {
  const store = database.kind;
  const timed = async <T>(operation: string, call: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      const result = await call();
      observe(store, operation, (performance.now() - started) / 1000, 'ok');
      return result;
    } catch (error) {
      const outcome = error instanceof AppError ? 'ok' : error instanceof StoreUnavailableError ? 'unavailable' : 'error';
      observe(store, operation, (performance.now() - started) / 1000, outcome);
      throw error;
    }
  };
  return {
    kind: database.kind,
    query: (sql, params) => timed('query', () => database.query(sql, params)),
    exec: (sql) => timed('exec', () => database.exec(sql)),
    transaction: (fn: (tx: Queryable) => Promise<never>) => timed('transaction', () => database.transaction(fn)),
    withAdvisoryLock: (key, fn: (connection: Queryable) => Promise<never>) => timed('advisory_lock', () => database.withAdvisoryLock(key, fn)),
    ping: () => timed('ping', () => database.ping()),
    close: () => database.close(),
  };
}
