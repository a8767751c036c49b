import type { CounterResult, EphemeralStore, SetOptions, SubscribeOptions, Subscription } from './ephemeral-store.ts';

export interface MemoryEphemeralStoreOptions {
  /** Kept for symmetry with Redis (keys are stored under it); one store never sees another's keys. */
  keyPrefix?: string;
  /** Milliseconds since the epoch; every TTL decision uses it, so tests move time instead of sleeping. */
  clock?: () => number;
  /** How often expired entries are swept out (they are already invisible once expired). Default 30 s. */
  sweepIntervalMs?: number;
  /** Told when a subscriber's handler throws. */
  logger?: { warn(obj: object, msg: string): void };
}

type Entry = { kind: 'string'; value: string; expiresAt: number } | { kind: 'set'; members: Set<string>; expiresAt: number };

interface Listener {
  handler: (message: string) => void;
  active: boolean;
}

const WRONG_TYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';

function assertTtl(ttlMs: number, what: string): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`${what} must be a positive whole number of milliseconds, got ${ttlMs}`);
  }
}

/**
 * The in-process ephemeral store: the semantics of the Redis one (same contract suite) for a
 * single process. Every operation runs to completion on the one JavaScript thread, so each is
 * atomic; expired entries are invisible at once and swept out periodically.
 */
export function createMemoryEphemeralStore(options: MemoryEphemeralStoreOptions = {}): EphemeralStore {
  const prefix = options.keyPrefix ?? '';
  const now = options.clock ?? Date.now;
  const entries = new Map<string, Entry>();
  const channels = new Map<string, Set<Listener>>();
  let closed = false;

  const sweep = setInterval(() => {
    const at = now();
    for (const [key, entry] of entries) {
      if (entry.expiresAt <= at) entries.delete(key);
    }
  }, options.sweepIntervalMs ?? 30_000);
  sweep.unref();

  function open(): void {
    if (closed) throw new Error('the in-memory ephemeral store is closed');
  }

  /** The live entry under a key, dropping it when it has expired. */
  function live(key: string): Entry | undefined {
    const full = prefix + key;
    const entry = entries.get(full);
    if (entry && entry.expiresAt <= now()) {
      entries.delete(full);
      return undefined;
    }
    return entry;
  }

  function stringValue(key: string): string | null {
    const entry = live(key);
    if (!entry) return null;
    if (entry.kind !== 'string') throw new Error(WRONG_TYPE);
    return entry.value;
  }

  function setEntry(key: string): Extract<Entry, { kind: 'set' }> | undefined {
    const entry = live(key);
    if (entry && entry.kind !== 'set') throw new Error(WRONG_TYPE);
    return entry;
  }

  async function del(...keys: string[]): Promise<number> {
    open();
    let existed = 0;
    for (const key of new Set(keys)) {
      if (live(key)) {
        entries.delete(prefix + key);
        existed += 1;
      }
    }
    return existed;
  }

  return {
    kind: 'memory',

    async get(key) {
      open();
      return stringValue(key);
    },

    async getMany(keys) {
      open();
      return keys.map(stringValue);
    },

    async set(key: string, value: string, { ttlMs, onlyIfAbsent }: SetOptions) {
      open();
      assertTtl(ttlMs, 'ttlMs');
      if (onlyIfAbsent && live(key)) return false;
      entries.set(prefix + key, { kind: 'string', value, expiresAt: now() + ttlMs });
      return true;
    },

    async setIfAbsentAlongside(key, value, companion, marginMs) {
      open();
      assertTtl(marginMs, 'marginMs');
      const alongside = live(companion);
      if (!alongside) return 'missing';
      if (live(key)) return 'exists';
      const expiresAt = (Number.isFinite(alongside.expiresAt) ? alongside.expiresAt : now()) + marginMs;
      entries.set(prefix + key, { kind: 'string', value, expiresAt });
      return 'written';
    },

    async setWithCompanion(key, value, ttlMs, companion) {
      open();
      assertTtl(ttlMs, 'ttlMs');
      assertTtl(companion.ttlMs, 'companion.ttlMs');
      const at = now();
      entries.set(prefix + key, { kind: 'string', value, expiresAt: at + ttlMs });
      const existing = live(companion.key);
      if (existing) existing.expiresAt = at + companion.ttlMs;
      else if (companion.value !== undefined) entries.set(prefix + companion.key, { kind: 'string', value: companion.value, expiresAt: at + companion.ttlMs });
    },

    async getDel(key) {
      open();
      const value = stringValue(key);
      if (value !== null) entries.delete(prefix + key);
      return value;
    },

    del,
    /** One process, no replicas: the same as del. */
    delDurably: del,

    async expire(key, ttlMs) {
      open();
      assertTtl(ttlMs, 'ttlMs');
      const entry = live(key);
      if (!entry) return false;
      entry.expiresAt = now() + ttlMs;
      return true;
    },

    async ttl(key) {
      open();
      const entry = live(key);
      return entry ? entry.expiresAt - now() : null;
    },

    async increment(key, windowMs): Promise<CounterResult> {
      open();
      assertTtl(windowMs, 'windowMs');
      const at = now();
      const current = stringValue(key);
      if (current !== null && !/^-?\d+$/.test(current)) throw new Error('ERR value is not an integer or out of range');
      const count = current === null ? 1 : Number(current) + 1;
      const entry = live(key);
      const expiresAt = entry ? entry.expiresAt : at + windowMs;
      entries.set(prefix + key, { kind: 'string', value: String(count), expiresAt });
      return { count, ttlMs: expiresAt - at };
    },

    async addToSet(key, member, ttlMs) {
      open();
      assertTtl(ttlMs, 'ttlMs');
      const at = now();
      const entry = setEntry(key);
      if (entry) {
        entry.members.add(member);
        entry.expiresAt = Math.max(entry.expiresAt, at + ttlMs);
      } else {
        entries.set(prefix + key, { kind: 'set', members: new Set([member]), expiresAt: at + ttlMs });
      }
    },

    async setMembers(key) {
      open();
      return [...(setEntry(key)?.members ?? [])];
    },

    async removeFromSet(key, member) {
      open();
      const entry = setEntry(key);
      if (!entry) return;
      entry.members.delete(member);
      if (entry.members.size === 0) entries.delete(prefix + key); // as Redis: an empty set is no key
    },

    async publish(channel, message) {
      open();
      const targets = [...(channels.get(prefix + channel) ?? [])];
      if (targets.length === 0) return;
      // Delivered after publish returns, as a message from Redis would be.
      queueMicrotask(() => {
        for (const listener of targets) {
          if (!listener.active || closed) continue;
          try {
            listener.handler(message);
          } catch (error) {
            options.logger?.warn({ channel, reason: error instanceof Error ? error.message : String(error) }, 'a subscriber failed to handle a message');
          }
        }
      });
    },

    async subscribe(channel: string, handler: (message: string) => void, _options?: SubscribeOptions): Promise<Subscription> {
      open();
      // In process, the channel is never down: onStateChange is never called.
      const full = prefix + channel;
      const listener: Listener = { handler, active: true };
      const set = channels.get(full) ?? new Set<Listener>();
      channels.set(full, set);
      set.add(listener);
      return {
        async close() {
          listener.active = false;
          set.delete(listener);
          if (set.size === 0 && channels.get(full) === set) channels.delete(full);
        },
      };
    },

    async ping() {
      open();
    },

    async close() {
      closed = true;
      clearInterval(sweep);
      entries.clear();
      channels.clear();
    },
  };
}
