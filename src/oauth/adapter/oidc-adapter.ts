import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { invalidationTarget, type InvalidationPublisher } from '../../cache/invalidations.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import type { GrantCache } from './grant-cache.ts';
import { oidcDigest, oidcKeys as keys, PAYLOAD_KEY } from './oidc-keys.ts';
import { keepsJti, parsePayload, readPayload, storedPayload } from './stored-payload.ts';

// oidc-provider's storage adapter on the ephemeral store (Redis, or in-process for trials): tokens,
// codes, grants, sessions, interactions. Clients come from PostgreSQL (provider.ts). Only digests of
// token values are kept; every key has a TTL; single-use is one atomic step in the store. Key layout
// and the reasoning behind each rule: docs/design/oidc-adapter.md.

/** The lifetime of a payload saved without one (a model whose `ttl` is not configured): 14 days. */
export const DEFAULT_TTL_SECONDS = 14 * 24 * 60 * 60;

/** How long a prefetched payload may stand in for a read of the store (a check, then oidc-provider's find). */
const PREFETCH_LIFETIME_MS = 1000;

/** The models that carry a grantId and are revoked with their grant. */
const GRANT_BOUND_MODELS: ReadonlySet<string> = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);

/** Models indexed by client, so that deleting a client (or rotating its secret) ends its tokens. */
const CLIENT_BOUND_MODELS: ReadonlySet<string> = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'ClientCredentials', 'BackchannelAuthenticationRequest', 'Grant']);

/** Models indexed by account: a person's logins (grants) and provider sessions, ended together. */
const ACCOUNT_BOUND_MODELS: ReadonlySet<string> = new Set(['Grant', 'Session']);

/** Models oidc-provider marks consumed (adapter.consume): only these have a consumed marker. */
const CONSUMABLE_MODELS: ReadonlySet<string> = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PushedAuthorizationRequest', 'PreAuthorizedCode']);

/** Models whose tokens introspection answers (and caches): their end is published. */
const INTROSPECTED_MODELS: ReadonlySet<string> = new Set(['AccessToken', 'ClientCredentials', 'RefreshToken']);

/** How oidc-provider names the single-use artefacts in its messages. */
const LABELS: Readonly<Record<string, string>> = {
  AuthorizationCode: 'authorization code',
  RefreshToken: 'refresh token',
  DeviceCode: 'device code',
  BackchannelAuthenticationRequest: 'backchannel authentication request',
  PreAuthorizedCode: 'pre-authorized code',
  PushedAuthorizationRequest: 'pushed authorization request',
};

/** A consumed marker outlives its payload by this much, never the other way round. */
const MARKER_MARGIN_MS = 1000;

/** A device code is kept this long past its expiry, so a late poll is expired_token (RFC 8628 §3.5), not invalid_grant. */
export const DEVICE_CODE_GRACE_MS = 10 * 60 * 1000;

const MODEL_NAME = /^[A-Za-z]+$/;

export interface OidcAdapter extends Adapter {
  upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
  find(id: string): Promise<AdapterPayload | undefined>;
  /** find(id) for a check just before oidc-provider's own find of the same id, which then takes this answer. */
  prefetch(id: string): Promise<AdapterPayload | undefined>;
  findByUserCode(userCode: string): Promise<AdapterPayload | undefined>;
  findByUid(uid: string): Promise<AdapterPayload | undefined>;
  /** Marks the artefact consumed; of concurrent callers exactly one succeeds, the others get InvalidGrant. */
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  /** Deletes every artefact issued under the grant, whatever its model. */
  revokeByGrantId(grantId: string): Promise<void>;
  /** Deletes every token, code and grant of a client (Tessera's own: on delete and secret rotation). */
  revokeByClientId(clientId: string): Promise<void>;
  /**
   * Deletes every grant of an account, with everything issued under each, and its provider
   * sessions (Tessera's own: an admin ending a person's sign-ins). Counts what it deleted.
   */
  revokeByAccountId(accountId: string): Promise<{ grants: number; sessions: number }>;
  /** The live grants (logins) of an account, newest first (Tessera's own: "Authorized logins"). */
  listAccountGrants(accountId: string): Promise<AccountGrant[]>;
  /**
   * Deletes one grant of the account, by its handle, with everything issued under it; false when
   * it is not a live grant of that account. Cached answers about its tokens end on every node.
   */
  revokeAccountGrant(accountId: string, handle: string): Promise<boolean>;
  /** The live provider sessions of an account (its sign-ins at the app and device pages), newest first. */
  listAccountSessions(accountId: string): Promise<AccountSession[]>;
  /** Deletes one provider session of the account by its handle; false when it is not a live one of that account. */
  revokeAccountSession(accountId: string, handle: string): Promise<boolean>;
}

/** A sign-in at the app and device pages (oidc-provider's Session), as its owner sees it. */
export interface AccountSession {
  /** The digest of the session's id (never the id, which its cookie carries). */
  handle: string;
  signedInAt: Date | null;
  expiresAt: Date | null;
}

/** A login an account approved, as its owner sees it. */
export interface AccountGrant {
  /** Names the grant in pages and URLs: the digest of its id (the id itself is never shown). */
  handle: string;
  clientId: string;
  /** What it may ask for: its OpenID scopes and each resource's, without repetition. */
  scopes: string[];
  approvedAt: Date | null;
  expiresAt: Date | null;
  /** When a token was last issued under it (an approval, a refresh): no write on any token's use. */
  lastUsedAt: Date | null;
}

/** A grant's or session's handle as the adapter hands it out (a SHA-256 digest, base64url). */
const GRANT_HANDLE = /^[A-Za-z0-9_-]{43}$/;

/** The scopes a grant payload holds (oidc-provider's Grant: `openid.scope`, `resources[r]`). */
function grantScopes(payload: AdapterPayload): string[] {
  const scopes = new Set<string>();
  const add = (value: unknown) => String(value ?? '').split(' ').filter(Boolean).forEach((s) => scopes.add(s));
  add((payload.openid as { scope?: unknown } | undefined)?.scope);
  const resources = payload.resources as Record<string, unknown> | undefined;
  if (resources && typeof resources === 'object') Object.values(resources).forEach(add);
  return [...scopes];
}

const epochDate = (seconds: unknown) => (typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000) : null);

export interface OidcAdapterOptions {
  /** Milliseconds since the epoch, for the `consumed` timestamp. Default Date.now. */
  clock?: () => number;
  /** How long a device code is kept past its expiry (default DEVICE_CODE_GRACE_MS). */
  deviceCodeGraceMs?: number;
  /** Told when a token, grant or client's tokens end, so that cached answers about them go everywhere. */
  invalidate?: InvalidationPublisher;
  /** Grants are read through this cache when given; the caller keeps it subscribed to the invalidations. */
  grants?: GrantCache;
  /** Told of each token or grant deleted before its time (revoked, or swept with its grant, client or account): the metrics. */
  onRevoked?: (kind: 'access_token' | 'refresh_token' | 'client_credentials' | 'grant') => void;
}

/** The kind a revoked record is counted as, for the models that count. */
const REVOKED_KINDS: Readonly<Record<string, 'access_token' | 'refresh_token' | 'client_credentials' | 'grant'>> = {
  AccessToken: 'access_token',
  RefreshToken: 'refresh_token',
  ClientCredentials: 'client_credentials',
  Grant: 'grant',
};

/** expiresIn (seconds) as a TTL in ms; null when already expired; missing or infinite becomes the bounded default. */
function ttlMsFor(expiresIn: number | undefined): number | null {
  if (typeof expiresIn === 'number' && expiresIn <= 0) return null;
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn)) return DEFAULT_TTL_SECONDS * 1000;
  return Math.ceil(expiresIn * 1000);
}

/**
 * oidc-provider's adapter factory: called once per model name ('AccessToken', 'Session', …).
 * Throws for 'Client': clients are not ephemeral and come from PostgreSQL.
 */
export function createOidcAdapterFactory(store: EphemeralStore, options: OidcAdapterOptions = {}): (modelName: string) => OidcAdapter {
  const clock = options.clock ?? Date.now;
  const deviceCodeGraceMs = options.deviceCodeGraceMs ?? DEVICE_CODE_GRACE_MS;
  const invalidate = options.invalidate ?? (async () => {});
  const prefetchedByModel = new Map<string, Map<string, { payload: AdapterPayload | undefined; at: number }>>();

  return (model: string): OidcAdapter => {
    if (model === 'Client') {
      throw new Error('the ephemeral oidc-provider adapter does not store clients: they come from PostgreSQL');
    }
    if (!MODEL_NAME.test(model)) throw new Error(`unexpected oidc-provider model name ${JSON.stringify(model)}`);
    const label = LABELS[model] ?? model;

    const consumable = CONSUMABLE_MODELS.has(model);
    const introspected = INTROSPECTED_MODELS.has(model);
    const grants = model === 'Grant' ? options.grants : undefined;

    /** The payload of a digest, with `consumed` from its marker (one MGET, one slot). */
    async function findByDigest(digest: string, id?: string): Promise<AdapterPayload | undefined> {
      if (!consumable) return readPayload(store, model, digest, id);
      const [raw, consumed] = await store.getMany([keys.payload(model, digest), keys.consumed(model, digest)]);
      return storedPayload(raw, id, consumed);
    }

    /**
     * Deletes a payload, its marker and the lookups that point to it; returns the payload, and
     * whether this call deleted it (of concurrent removals, one does: oidc-provider revokes a
     * grant through every model's adapter at once).
     */
    async function removeRecord(recordModel: string, digest: string): Promise<{ payload: AdapterPayload | undefined; deleted: boolean }> {
      const payloadKey = keys.payload(recordModel, digest);
      const raw = await store.get(payloadKey);
      let deleted = false;
      // The consumed marker stays until its own TTL ends, or a redemption that read the payload
      // before this removal could still win afterwards. Durably: a failover must not bring it back.
      try {
        deleted = (await store.delDurably(payloadKey)) > 0;
      } finally {
        // Also when no replica confirmed the deletion: the master ran it, so caches must drop it.
        if (INTROSPECTED_MODELS.has(recordModel)) await invalidate(invalidationTarget.oauthToken(digest));
        else if (recordModel === 'Grant') await invalidate(invalidationTarget.grantDigest(digest));
      }
      const revokedKind = REVOKED_KINDS[recordModel];
      if (deleted && revokedKind) options.onRevoked?.(revokedKind);
      if (raw === null) return { payload: undefined, deleted };
      const payload = parsePayload(raw);
      const lookups: string[] = [];
      if (typeof payload.userCode === 'string') lookups.push(keys.userCode(recordModel, payload.userCode));
      if (typeof payload.uid === 'string') lookups.push(keys.uid(recordModel, payload.uid));
      // A lookup is removed only while it still points here (a newer record may own it now).
      await Promise.all(
        lookups.map(async (lookup) => {
          if ((await store.get(lookup)) === digest) await store.del(lookup);
        }),
      );
      return { payload, deleted };
    }

    /**
     * Deletes every record an index (a grant's, a client's) lists, one member at a time; each
     * leaves the index once deleted, so a token issued meanwhile keeps its entry.
     */
    async function sweepIndex(indexKey: string): Promise<void> {
      const members = await store.setMembers(indexKey);
      await Promise.all(
        members.map(async (member) => {
          const match = PAYLOAD_KEY.exec(member);
          if (match) await removeRecord(match[2]!, match[1]!);
          await store.removeFromSet(indexKey, member);
        }),
      );
    }

    // Prefetched payloads by id, oldest first; each is taken by the next find(id) or dropped.
    // Shared by every adapter of this model (oidc-provider's and the token endpoint's check).
    let prefetched = prefetchedByModel.get(model);
    if (!prefetched) prefetchedByModel.set(model, (prefetched = new Map()));
    const dropStalePrefetches = (at: number) => {
      for (const [id, entry] of prefetched) {
        if (at - entry.at < PREFETCH_LIFETIME_MS) break;
        prefetched.delete(id);
      }
    };

    const adapter: OidcAdapter = {
      async upsert(id, payload, expiresIn) {
        const digest = oidcDigest(id);
        const lifetimeMs = ttlMsFor(expiresIn);
        const ttlMs = lifetimeMs !== null && model === 'DeviceCode' ? lifetimeMs + deviceCodeGraceMs : lifetimeMs;
        if (ttlMs === null) {
          // Saved with no time left (e.g. Session.persist at its expiry): it is gone already.
          await adapter.destroy(id);
          return;
        }
        const payloadKey = keys.payload(model, digest);

        // Indexes and payload are all stored before the token is handed out: a failure leaves at
        // worst an orphan, never a token its grant's or client's revocation would miss.
        const writes: Promise<unknown>[] = [];
        if (GRANT_BOUND_MODELS.has(model) && typeof payload.grantId === 'string') {
          writes.push(store.addToSet(keys.grant(payload.grantId), payloadKey, ttlMs));
        }
        if (CLIENT_BOUND_MODELS.has(model) && typeof payload.clientId === 'string') {
          writes.push(store.addToSet(keys.client(payload.clientId), payloadKey, ttlMs));
        }
        if (ACCOUNT_BOUND_MODELS.has(model) && typeof payload.accountId === 'string') {
          writes.push(store.addToSet(keys.account(payload.accountId), payloadKey, ttlMs));
        }
        if (typeof payload.userCode === 'string') {
          writes.push(store.set(keys.userCode(model, payload.userCode), digest, { ttlMs }));
        }
        if (typeof payload.uid === 'string') {
          writes.push(store.set(keys.uid(model, payload.uid), digest, { ttlMs }));
        }

        // `consumed` lives in the marker only; the raw id only where a lookup must return it.
        // (Left out by destructuring, not `delete`, which would make JSON.stringify's work slower.)
        const { consumed, jti, ...rest } = payload;
        const json = JSON.stringify(jti === id && !keepsJti(payload) ? rest : { ...rest, jti });
        if (CONSUMABLE_MODELS.has(model)) {
          // The marker (if any) must live as long as the payload, or the payload would become
          // unused again: both in one atomic step.
          const marker = typeof consumed === 'number' || (typeof consumed === 'string' && consumed !== '') ? String(consumed) : undefined;
          writes.push(store.setWithCompanion(payloadKey, json, ttlMs, { key: keys.consumed(model, digest), ttlMs: ttlMs + MARKER_MARGIN_MS, value: marker }));
        } else {
          writes.push(store.set(payloadKey, json, { ttlMs }));
        }
        await Promise.all(writes);
        // Every node's copy of a grant goes once the new one is stored, not before.
        if (model === 'Grant') await invalidate(invalidationTarget.grant(id));
      },

      async find(id) {
        if (grants) return (await grants.get(id)) ?? undefined;
        const early = prefetched.get(id);
        if (early !== undefined) {
          prefetched.delete(id);
          if (performance.now() - early.at < PREFETCH_LIFETIME_MS) return early.payload && { ...early.payload };
        }
        return findByDigest(oidcDigest(id), id);
      },

      async prefetch(id) {
        const payload = await findByDigest(oidcDigest(id), id);
        const at = performance.now();
        dropStalePrefetches(at);
        prefetched.delete(id);
        prefetched.set(id, { payload, at });
        return payload && { ...payload };
      },

      async findByUserCode(userCode) {
        const digest = await store.get(keys.userCode(model, userCode));
        if (digest === null) return undefined;
        const payload = await findByDigest(digest);
        // A lookup left behind by a record that changed its user code finds nothing.
        return payload?.userCode === userCode ? payload : undefined;
      },

      async findByUid(uid) {
        const digest = await store.get(keys.uid(model, uid));
        if (digest === null) return undefined;
        const payload = await findByDigest(digest);
        return payload?.uid === uid ? payload : undefined;
      },

      async consume(id) {
        prefetched.delete(id);
        const digest = oidcDigest(id);
        const payloadKey = keys.payload(model, digest);
        const markerKey = keys.consumed(model, digest);
        // One atomic step: of concurrent redemptions exactly one writes the marker, and only
        // while the payload exists.
        const marked = store.setIfAbsentAlongside(markerKey, String(Math.floor(clock() / 1000)), payloadKey, MARKER_MARGIN_MS);
        // The invalidation follows on the same connection without waiting: one round trip, not
        // two. Harmless should the redemption fail.
        const [outcome] = await Promise.all([marked, introspected ? invalidate(invalidationTarget.oauthToken(digest)) : undefined]);
        if (outcome === 'missing') throw new errors.InvalidGrant(`${label} not found`);
        if (outcome === 'exists') throw new errors.InvalidGrant(`${label} already consumed`);
      },

      async destroy(id) {
        prefetched.delete(id);
        const digest = oidcDigest(id);
        const { payload } = await removeRecord(model, digest);
        if (payload && GRANT_BOUND_MODELS.has(model) && typeof payload.grantId === 'string') {
          await store.removeFromSet(keys.grant(payload.grantId), keys.payload(model, digest));
        }
        if (payload && CLIENT_BOUND_MODELS.has(model) && typeof payload.clientId === 'string') {
          await store.removeFromSet(keys.client(payload.clientId), keys.payload(model, digest));
        }
        if (payload && ACCOUNT_BOUND_MODELS.has(model) && typeof payload.accountId === 'string') {
          await store.removeFromSet(keys.account(payload.accountId), keys.payload(model, digest));
        }
      },

      // Cached answers end once the records are gone (also when the sweep fails half-way).
      async revokeByClientId(clientId) {
        try {
          await sweepIndex(keys.client(clientId));
        } finally {
          await invalidate(invalidationTarget.client(clientId));
        }
      },

      // A grant goes after what was issued under it (as revokeByGrantId), each leaving the index
      // once deleted, so that a login made meanwhile keeps its entry.
      async revokeByAccountId(accountId) {
        const indexKey = keys.account(accountId);
        const ended = { grants: 0, sessions: 0 };
        await Promise.all(
          (await store.setMembers(indexKey)).map(async (member) => {
            const match = PAYLOAD_KEY.exec(member);
            if (match?.[2] === 'Grant') {
              await sweepIndex(keys.grantByDigest(match[1]!));
              if ((await removeRecord('Grant', match[1]!)).deleted) ended.grants += 1;
            } else if (match?.[2] === 'Session') {
              if ((await removeRecord('Session', match[1]!)).deleted) ended.sessions += 1;
            }
            await store.removeFromSet(indexKey, member);
          }),
        );
        return ended;
      },

      async listAccountGrants(accountId) {
        const indexKey = keys.account(accountId);
        const found = await Promise.all(
          (await store.setMembers(indexKey)).map(async (member): Promise<AccountGrant | null> => {
            const match = PAYLOAD_KEY.exec(member);
            if (match?.[2] !== 'Grant') return null;
            const raw = await store.get(member);
            if (raw === null) {
              await store.removeFromSet(indexKey, member);
              return null;
            }
            const grant = parsePayload(raw);
            if (grant.accountId !== accountId || typeof grant.clientId !== 'string') return null;
            // Last use: the newest token issued under the grant (read here, never written on use).
            const issued = (await store.setMembers(keys.grantByDigest(match[1]!))).filter((key) => /:(AccessToken|RefreshToken)$/.test(key));
            const times = (await Promise.all(issued.map((key) => store.get(key))))
              .filter((value): value is string => value !== null)
              .map((value) => Number(parsePayload(value).iat))
              .filter((iat) => Number.isFinite(iat));
            return {
              handle: match[1]!,
              clientId: grant.clientId,
              scopes: grantScopes(grant),
              approvedAt: epochDate(grant.iat),
              expiresAt: epochDate(grant.exp),
              lastUsedAt: times.length ? new Date(Math.max(...times) * 1000) : null,
            };
          }),
        );
        return found.filter((g): g is AccountGrant => g !== null).sort((a, b) => (b.approvedAt?.getTime() ?? 0) - (a.approvedAt?.getTime() ?? 0) || (a.handle < b.handle ? -1 : 1));
      },

      // As revokeByAccountId, for one grant: its tokens first, then the grant, then its index entry.
      async revokeAccountGrant(accountId, handle) {
        if (typeof handle !== 'string' || !GRANT_HANDLE.test(handle)) return false;
        const member = keys.payload('Grant', handle);
        const raw = await store.get(member);
        if (raw === null || parsePayload(raw).accountId !== accountId) return false;
        await sweepIndex(keys.grantByDigest(handle));
        const { deleted } = await removeRecord('Grant', handle);
        await store.removeFromSet(keys.account(accountId), member);
        return deleted;
      },

      async listAccountSessions(accountId) {
        const indexKey = keys.account(accountId);
        const found = await Promise.all(
          (await store.setMembers(indexKey)).map(async (member): Promise<AccountSession | null> => {
            const match = PAYLOAD_KEY.exec(member);
            if (match?.[2] !== 'Session') return null;
            const raw = await store.get(member);
            if (raw === null) {
              await store.removeFromSet(indexKey, member);
              return null;
            }
            const session = parsePayload(raw);
            if (session.accountId !== accountId) return null;
            return { handle: match[1]!, signedInAt: epochDate(session.loginTs ?? session.iat), expiresAt: epochDate(session.exp) };
          }),
        );
        return found.filter((s): s is AccountSession => s !== null).sort((a, b) => (b.signedInAt?.getTime() ?? 0) - (a.signedInAt?.getTime() ?? 0) || (a.handle < b.handle ? -1 : 1));
      },

      async revokeAccountSession(accountId, handle) {
        if (typeof handle !== 'string' || !GRANT_HANDLE.test(handle)) return false;
        const member = keys.payload('Session', handle);
        const raw = await store.get(member);
        if (raw === null || parsePayload(raw).accountId !== accountId) return false;
        const { deleted } = await removeRecord('Session', handle);
        await store.removeFromSet(keys.account(accountId), member);
        return deleted;
      },

      async revokeByGrantId(grantId) {
        try {
          await sweepIndex(keys.grant(grantId));
        } finally {
          await invalidate(invalidationTarget.grant(grantId));
        }
      },
    };
    return adapter;
  };
}
