/**
 * The ephemeral store: short-lived state (login sessions, oidc-provider models, rate-limit
 * counters) and the pub/sub channel carrying cache invalidations between nodes. Redis
 * (store/redis/) and an in-process store implement it; both pass test/contract/ephemeral-store.contract.ts.
 * Keys are logical: each implementation prepends a prefix without braces, so a `{hash tag}` keeps
 * keys used together in one Redis Cluster slot. Every write takes a TTL in milliseconds.
 */
export interface SetOptions {
  /** Time to live in milliseconds (> 0). */
  ttlMs: number;
  /** Write only when the key does not exist yet (Redis SET NX). */
  onlyIfAbsent?: boolean;
  /** For a write that ends a credential: acknowledged only once a replica has it (see delDurably). */
  durable?: boolean;
}

export interface CounterResult {
  /** The count after this increment. */
  count: number;
  /** Milliseconds until the counter's window ends and it resets. */
  ttlMs: number;
}

export type ConnectionState = 'up' | 'down';

export interface Subscription {
  /** Stops delivering messages to this handler. */
  close(): Promise<void>;
}

export interface SubscribeOptions {
  /**
   * Called when the channel's connection is lost or restored. Messages published while it was
   * down are lost, so a subscriber that caches must flush on 'down' and bypass its cache until 'up'.
   */
  onStateChange?: (state: ConnectionState) => void;
  /**
   * Called (while the channel is up) when the store finds that it lost data, a disconnect or not
   * (a FLUSHALL, an eviction, an older snapshot restored): what a subscriber cached from it is stale.
   */
  onDataLost?: () => void;
}

export interface EphemeralStore {
  /** 'redis' or 'memory', for /readyz and the start-up log. */
  readonly kind: 'redis' | 'memory';

  get(key: string): Promise<string | null>;
  /** Values of several keys, in order (null where missing). Keys should share a hash tag. */
  getMany(keys: string[]): Promise<(string | null)[]>;
  /** Writes the value; returns false only when onlyIfAbsent was set and the key existed. */
  set(key: string, value: string, options: SetOptions): Promise<boolean>;
  /**
   * Writes `value` under `key` only if `key` does not exist and `companion` does, to live as long as
   * the companion plus `marginMs`, in one atomic step (a consumed marker beside its payload). Of
   * many concurrent callers exactly one gets 'written'; 'exists' when `key` was there already;
   * 'missing' when the companion is not. The two keys should share a hash tag.
   */
  setIfAbsentAlongside(key: string, value: string, companion: string, marginMs: number): Promise<'written' | 'exists' | 'missing'>;
  /**
   * Writes `value` under `key` (TTL ttlMs) and, in the same atomic step, gives `companion.key` the
   * TTL `companion.ttlMs`: written with `companion.value` when that is given and the key is absent,
   * otherwise re-timed if it exists (never created without a value, never overwritten). A payload
   * saved again with its consumed marker, so the marker never lives shorter than the payload. The
   * two keys should share a hash tag.
   */
  setWithCompanion(key: string, value: string, ttlMs: number, companion: { key: string; ttlMs: number; value?: string }): Promise<void>;
  /** Reads and deletes in one atomic step: of many concurrent callers, exactly one gets the value. */
  getDel(key: string): Promise<string | null>;
  /** Deletes keys; returns how many existed. Keys should share a hash tag. */
  del(...keys: string[]): Promise<number>;
  /**
   * del for what ends a credential (a revocation, a logout): where Redis has replicas, it resolves
   * only once one of them has the deletion too, so that a failover cannot bring the credential
   * back, and throws StoreUnavailableError when none confirms it in time.
   */
  delDurably(...keys: string[]): Promise<number>;
  /** Sets a new TTL on an existing key; false when the key does not exist. */
  expire(key: string, ttlMs: number): Promise<boolean>;
  /**
   * Remaining TTL in ms, or null when the key does not exist. (A key without a TTL, which this
   * store never writes, reports Infinity.)
   */
  ttl(key: string): Promise<number | null>;

  /**
   * Fixed-window counter: atomically increments the key; the first increment starts a window
   * of windowMs, at whose end the counter disappears.
   */
  increment(key: string, windowMs: number): Promise<CounterResult>;

  /**
   * Adds a member to a set and (re)sets the set's TTL to at least ttlMs. (Redis: the additions to
   * one set made in one turn of the event loop go out as one command.)
   */
  addToSet(key: string, member: string, ttlMs: number): Promise<void>;
  setMembers(key: string): Promise<string[]>;
  removeFromSet(key: string, member: string): Promise<void>;

  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, handler: (message: string) => void, options?: SubscribeOptions): Promise<Subscription>;

  /** Resolves when the store answers; rejects with a clear message otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
