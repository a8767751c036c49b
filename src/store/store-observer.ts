/**
 * Told of each command to a store: which store, what it ran (a fixed name such as GET or query,
 * never a key or SQL text), how long it took, and how it ended. The metrics take it; without
 * metrics no store times anything.
 */
export type StoreObserver = (store: 'redis' | 'postgres' | 'pglite', operation: string, seconds: number, outcome: 'ok' | 'error' | 'unavailable') => void;
