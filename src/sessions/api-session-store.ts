// API session tokens (password login for API clients), kept in the ephemeral store under the
// token's digest. A session slides: each use extends it by the idle timeout, never past its
// absolute limit; a non-expiring one (ArchivesSpace's expiring=false) has no idle timeout and
// ends at its own fixed limit. Keys, timing and ordering: docs/design/api-sessions.md.
import { invalidationTarget, type InvalidationPublisher } from '../cache/invalidations.ts';
import type { EphemeralStore } from '../store/ephemeral/ephemeral-store.ts';
import { randomBase62, tokenFormat } from '../credentials/token-format.ts';

export interface ApiSession {
  /** A public identifier (not the token) used to list and end sessions. */
  id: string;
  userId: string;
  scopes: string[];
  createdAt: Date;
  lastSeenAt: Date;
  /** When the session ends if it stays idle (min of idle timeout and absolute limit). */
  expiresAt: Date;
  /** The hard limit, however active the session. */
  absoluteExpiresAt: Date;
  /** False for a session without idle timeout: it ends at absoluteExpiresAt, used or not. */
  expiring: boolean;
  ip: string | null;
  userAgent: string | null;
}

export interface NewApiSession {
  userId: string;
  scopes: string[];
  /**
   * Given: a session without idle timeout that ends this many seconds after login, instead of
   * the absolute timeout (ArchivesSpace's expiring=false). The caller bounds it.
   */
  nonExpiringSeconds?: number;
  ip: string | null;
  userAgent: string | null;
}

export interface ApiSessionStore {
  /** Creates a session; returns the token (shown once) and the session. */
  create(input: NewApiSession): Promise<{ token: string; session: ApiSession }>;
  /**
   * The live session of a token, touched (its idle expiry slides forward), or null when the token
   * is malformed, unknown, idle-expired or past its absolute limit.
   */
  authenticate(token: string): Promise<ApiSession | null>;
  /** The live session of a token without touching it (for introspection). */
  peek(token: string): Promise<ApiSession | null>;
  /** The same by the token's digest (what a token obtained by exchanging a session remembers: docs/token-exchange.md). */
  peekByDigest(digest: string): Promise<ApiSession | null>;
  /** Live sessions of a user, newest first. */
  listForUser(userId: string): Promise<ApiSession[]>;
  /** Ends one session of the user by its public id; false when it is not theirs or not live. */
  end(userId: string, sessionId: string): Promise<boolean>;
  /** Ends the session of a token (logout); false when there was none. */
  endByToken(token: string): Promise<boolean>;
  /** Ends the session of a token and answers what it was; null when there was no live one. */
  endAndReturn(token: string): Promise<ApiSession | null>;
  /** Ends every session of a user (password change, disable); returns how many. */
  endAllForUser(userId: string): Promise<number>;
}

export interface ApiSessionStoreOptions {
  idleTimeoutSeconds: number;
  absoluteTimeoutSeconds: number;
  /** Milliseconds since the epoch; injected by tests. */
  clock?: () => number;
  /** Told when a session ends, so that cached answers about it go everywhere. */
  invalidate?: InvalidationPublisher;
  /** Told of each session ended before its time (logout, revocation, an account change): the metrics. */
  onEnded?: () => void;
}

/** The record, the public id's mapping to the digest, and the user's set of digests; each used alone. */
const keys = {
  record: (digest: string) => `api-session:{${digest}}`,
  id: (sessionId: string) => `api-session-id:{${sessionId}}`,
  user: (userId: string) => `api-user-sessions:{${userId}}`,
};

/** Characters of the public session id: 16 × log2(62) ≈ 95 bits, so ids never collide in practice. */
const SESSION_ID_LENGTH = 16;
const SESSION_ID = /^[0-9A-Za-z]{16}$/;

/** What the store holds for a session: times in milliseconds since the epoch. */
interface SessionRecord {
  id: string;
  userId: string;
  scopes: string[];
  createdAt: number;
  lastSeenAt: number;
  absoluteExpiresAt: number;
  /** Absent in records written before non-expiring sessions existed: those expire. */
  expiring?: boolean;
  ip: string | null;
  userAgent: string | null;
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function isNullableString(value: unknown): value is string | null {
  return value === null || typeof value === 'string';
}

/** The record stored under a key, or an error: this store writes every record, so another shape is a bug. */
function parseRecord(raw: string, key: string): SessionRecord {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new Error(`the API session record ${key} is not JSON`);
  }
  const r = value as Partial<SessionRecord> | null;
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof r.id !== 'string' ||
    typeof r.userId !== 'string' ||
    !Array.isArray(r.scopes) ||
    !r.scopes.every((s) => typeof s === 'string') ||
    !isTime(r.createdAt) ||
    !isTime(r.lastSeenAt) ||
    !isTime(r.absoluteExpiresAt) ||
    (r.expiring !== undefined && typeof r.expiring !== 'boolean') ||
    !isNullableString(r.ip) ||
    !isNullableString(r.userAgent)
  ) {
    throw new Error(`the API session record ${key} has an unexpected shape`);
  }
  return {
    id: r.id,
    userId: r.userId,
    scopes: r.scopes,
    createdAt: r.createdAt,
    lastSeenAt: r.lastSeenAt,
    absoluteExpiresAt: r.absoluteExpiresAt,
    expiring: r.expiring ?? true,
    ip: r.ip,
    userAgent: r.userAgent,
  };
}

function assertTimeout(seconds: number, name: string): void {
  if (!Number.isSafeInteger(seconds) || seconds < 1) throw new RangeError(`${name} must be a whole number of seconds >= 1, got ${seconds}`);
}

/**
 * A session is live while `now < min(lastSeenAt + idle, absoluteExpiresAt)` by the injected clock
 * (`now < absoluteExpiresAt` for a non-expiring one),
 * whatever the TTLs say. Ending deletes the id mapping before the record, and a touch that finds
 * the mapping gone deletes its record again, so an ended session never comes back.
 */
export function createApiSessionStore(store: EphemeralStore, options: ApiSessionStoreOptions): ApiSessionStore {
  assertTimeout(options.idleTimeoutSeconds, 'idleTimeoutSeconds');
  assertTimeout(options.absoluteTimeoutSeconds, 'absoluteTimeoutSeconds');
  const idleMs = options.idleTimeoutSeconds * 1000;
  const absoluteMs = options.absoluteTimeoutSeconds * 1000;
  const clock = options.clock ?? Date.now;

  /** When the session ends unless it is used before then. */
  const expiresAtOf = (record: SessionRecord) => (record.expiring === false ? record.absoluteExpiresAt : Math.min(record.lastSeenAt + idleMs, record.absoluteExpiresAt));

  /** Milliseconds the keys of a session live from `now` (> 0 only for a live session). */
  const ttlOf = (record: SessionRecord, now: number) => Math.ceil(expiresAtOf(record) - now);

  function toSession(record: SessionRecord): ApiSession {
    return {
      id: record.id,
      userId: record.userId,
      scopes: [...record.scopes],
      createdAt: new Date(record.createdAt),
      lastSeenAt: new Date(record.lastSeenAt),
      expiresAt: new Date(expiresAtOf(record)),
      absoluteExpiresAt: new Date(record.absoluteExpiresAt),
      expiring: record.expiring !== false,
      ip: record.ip,
      userAgent: record.userAgent,
    };
  }

  /** Deletes a session's keys; returns whether any of its id mapping or record still existed. */
  async function remove(digest: string, record: SessionRecord): Promise<boolean> {
    const mapping = await store.del(keys.id(record.id));
    let stored: number;
    try {
      // Durably: a failover must not bring the session back.
      stored = await store.delDurably(keys.record(digest));
    } finally {
      // Also when no replica confirmed the deletion: the master ran it, so caches must drop it.
      await options.invalidate?.(invalidationTarget.session(digest));
    }
    await store.removeFromSet(keys.user(record.userId), digest);
    if (mapping + stored > 0) options.onEnded?.();
    return mapping + stored > 0;
  }

  /** The live record under a digest; an expired one is removed and reads as missing. */
  async function load(digest: string): Promise<SessionRecord | null> {
    const key = keys.record(digest);
    const raw = await store.get(key);
    if (raw === null) return null;
    const record = parseRecord(raw, key);
    if (ttlOf(record, clock()) <= 0) {
      await remove(digest, record);
      return null;
    }
    return record;
  }

  /** The digest of a well-formed session token, or null (then nothing is looked up). */
  function digestOf(token: string): string | null {
    return tokenFormat.parse(token) === 'session' ? tokenFormat.digest(token) : null;
  }

  return {
    async create(input) {
      const token = tokenFormat.generate('session');
      const digest = tokenFormat.digest(token);
      const now = clock();
      const nonExpiring = input.nonExpiringSeconds !== undefined;
      if (nonExpiring) assertTimeout(input.nonExpiringSeconds!, 'nonExpiringSeconds');
      const lifetimeMs = nonExpiring ? input.nonExpiringSeconds! * 1000 : absoluteMs;
      const record: SessionRecord = {
        id: '',
        userId: input.userId,
        scopes: [...input.scopes],
        createdAt: now,
        lastSeenAt: now,
        absoluteExpiresAt: now + lifetimeMs,
        ...(nonExpiring ? { expiring: false } : {}),
        ip: input.ip,
        userAgent: input.userAgent,
      };
      const ttlMs = ttlOf(record, now);
      // A colliding id is practically impossible; SET NX makes one harmless all the same.
      for (let attempt = 0; record.id === ''; attempt += 1) {
        if (attempt === 3) throw new Error('could not allocate a unique API session id');
        const id = randomBase62(SESSION_ID_LENGTH);
        if (await store.set(keys.id(id), digest, { ttlMs, onlyIfAbsent: true })) record.id = id;
      }
      await store.set(keys.record(digest), JSON.stringify(record), { ttlMs });
      await store.addToSet(keys.user(record.userId), digest, Math.max(absoluteMs, lifetimeMs));
      return { token, session: toSession(record) };
    },

    async authenticate(token) {
      const digest = digestOf(token);
      if (digest === null) return null;
      const found = await load(digest);
      if (found === null) return null;
      const now = clock();
      const touched: SessionRecord = { ...found, lastSeenAt: Math.max(found.lastSeenAt, now) };
      const ttlMs = ttlOf(touched, now);
      if (ttlMs <= 0) return null;
      await store.set(keys.record(digest), JSON.stringify(touched), { ttlMs });
      if (!(await store.expire(keys.id(touched.id), ttlMs))) {
        // Ended meanwhile: the SET above must not bring the session back.
        await store.del(keys.record(digest));
        await store.removeFromSet(keys.user(touched.userId), digest);
        return null;
      }
      return toSession(touched);
    },

    async peek(token) {
      const digest = digestOf(token);
      if (digest === null) return null;
      const record = await load(digest);
      return record && toSession(record);
    },

    async peekByDigest(digest) {
      const record = await load(digest);
      return record && toSession(record);
    },

    async listForUser(userId) {
      const index = keys.user(userId);
      const digests = await store.setMembers(index);
      const records = await Promise.all(
        digests.map(async (digest) => {
          const record = await load(digest);
          if (record === null || record.userId !== userId) await store.removeFromSet(index, digest);
          return record?.userId === userId ? record : null;
        }),
      );
      return records
        .filter((r): r is SessionRecord => r !== null)
        .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : 1))
        .map(toSession);
    },

    async end(userId, sessionId) {
      if (typeof sessionId !== 'string' || !SESSION_ID.test(sessionId)) return false;
      const digest = await store.get(keys.id(sessionId));
      if (digest === null) return false;
      const record = await load(digest);
      if (record === null || record.userId !== userId || record.id !== sessionId) return false;
      return remove(digest, record);
    },

    async endByToken(token) {
      const digest = digestOf(token);
      if (digest === null) return false;
      const record = await load(digest);
      return record !== null && remove(digest, record);
    },

    async endAndReturn(token) {
      const digest = digestOf(token);
      if (digest === null) return null;
      const record = await load(digest);
      if (record === null) return null;
      // The id mapping goes first, as in remove(): of concurrent callers, only the one that
      // deleted it answers the session.
      const first = (await store.del(keys.id(record.id))) > 0;
      await remove(digest, record);
      return first ? toSession(record) : null;
    },

    async endAllForUser(userId) {
      const index = keys.user(userId);
      const ended = await Promise.all(
        (await store.setMembers(index)).map(async (digest) => {
          const record = await load(digest);
          if (record !== null && record.userId === userId) return remove(digest, record);
          await store.removeFromSet(index, digest);
          return false;
        }),
      );
      return ended.filter(Boolean).length;
    },
  };
}
