import { sha256Base64url } from '../../shared/sha256.ts';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { invalidationTarget, type InvalidationPublisher } from '../../cache/invalidations.ts';
import { createRecordCache, type RecordCache } from '../../cache/record-cache.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';

/**
 * oidc-provider's storage adapter on the ephemeral store (Redis in production, in-process for
 * trials): tokens, codes, grants, sessions and interactions. Clients are not kept here: they come
 * from PostgreSQL (src/oauth/provider.ts gives oidc-provider a separate adapter for 'Client').
 *
 * Layout (logical keys: the store prepends its own prefix). `d(x)` is the SHA-256 of x in
 * base64url, so no token, code, user code, session uid or grant id appears in a key name:
 *
 *   oidc:{d(id)}:<Model>                  the payload, as JSON
 *   oidc:{d(id)}:<Model>:consumed         the consumed marker (epoch seconds), set once, atomically;
 *                                         it lives 1 s longer than the payload, never shorter
 *   oidc:userCode:{d(userCode)}:<Model>   → d(id), for findByUserCode (device flow)
 *   oidc:uid:{d(uid)}:<Model>             → d(id), for findByUid (sessions)
 *   oidc:grant:{d(grantId)}               set of the payload keys issued under a grant
 *
 * Redis Cluster: the part in braces is the hash tag. A payload and its marker share one, so they
 * are read (MGET) and deleted (DEL) together in one slot; every other operation touches one key.
 *
 * Every key has a TTL: the one oidc-provider gives (expiresIn, seconds), or, when a model gives
 * none (a token type whose `ttl` is not configured), DEFAULT_TTL_SECONDS. Indexes live exactly as
 * long as what they point to; a grant's index lives as long as its longest-lived member (the
 * store's addToSet never shortens a TTL).
 *
 * The raw token value (`jti`) is not stored in the payload either, except where oidc-provider
 * must get it back from a lookup by another value: device codes (findByUserCode) and sessions
 * (findByUid). find(id) puts it back. So access tokens, refresh tokens and authorization codes
 * exist in the store only as digests.
 */

/**
 * The lifetime of a payload saved without one: 14 days. oidc-provider passes no expiresIn only
 * for token types whose `ttl` is left undefined (which it treats as "never expires"); this store
 * keeps nothing for ever, so such a token is gone after two weeks at the latest.
 */
export const DEFAULT_TTL_SECONDS = 14 * 24 * 60 * 60;

/**
 * How long a prefetched payload may stand in for a read of the store: the time between a check
 * and oidc-provider's find in one request. Single-use state is not decided by it: consume() is
 * atomic in the store whatever the payload said.
 */
const PREFETCH_LIFETIME_MS = 1000;

/** The models that carry a grantId and are revoked with their grant (as oidc-provider's own adapter). */
const GRANT_BOUND_MODELS: ReadonlySet<string> = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

/** How oidc-provider names the single-use artefacts in its messages. */
const LABELS: Readonly<Record<string, string>> = {
  AuthorizationCode: 'authorization code',
  RefreshToken: 'refresh token',
  DeviceCode: 'device code',
  BackchannelAuthenticationRequest: 'backchannel authentication request',
  PreAuthorizedCode: 'pre-authorized code',
  PushedAuthorizationRequest: 'pushed authorization request',
};

/**
 * A consumed marker outlives its payload by this much, never the other way round: the payload
 * must not exist, even for a few milliseconds, without the marker that says it was used.
 */
const MARKER_MARGIN_MS = 1000;

const MODEL_NAME = /^[A-Za-z]+$/;
const PAYLOAD_KEY = /^oidc:\{([A-Za-z0-9_-]{43})\}:([A-Za-z]+)$/;

export interface OidcAdapter extends Adapter {
  upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void>;
  find(id: string): Promise<AdapterPayload | undefined>;
  /**
   * find(id) for a check that runs just before oidc-provider's own find of the same id (the token
   * endpoint reads a refresh token first): the next find(id) within PREFETCH_LIFETIME_MS takes this
   * answer instead of reading the store again.
   */
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
}

export interface OidcAdapterOptions {
  /** Milliseconds since the epoch, for the `consumed` timestamp. Default Date.now. */
  clock?: () => number;
  /** How long a device code is kept past its expiry (default DEVICE_CODE_GRACE_MS). */
  deviceCodeGraceMs?: number;
  /** Told when a token, grant or client's tokens end, so that cached answers about them go everywhere. */
  invalidate?: InvalidationPublisher;
  /**
   * Grants are read through this cache (createGrantCache) when given; the caller keeps it
   * subscribed to the invalidations `invalidate` publishes.
   */
  grants?: GrantCache;
}

/** SHA-256 in base64url: what stands for a token, code or id in every key name. */
export function oidcDigest(value: string): string {
  return sha256Base64url(value);
}

/**
 * Digests of ids that come back request after request (a client's id on each of its tokens, a
 * grant's id on the refresh and access token of one refresh), remembered up to `max` at a time.
 */
function rememberedDigests(max: number): (value: string) => string {
  const known = new Map<string, string>();
  return (value) => {
    let digest = known.get(value);
    if (digest === undefined) {
      if (known.size >= max) known.clear();
      digest = oidcDigest(value);
      known.set(value, digest);
    }
    return digest;
  };
}
const clientDigest = rememberedDigests(1000);
const grantDigest = rememberedDigests(10_000);

const keys = {
  payload: (model: string, digest: string) => `oidc:{${digest}}:${model}`,
  consumed: (model: string, digest: string) => `oidc:{${digest}}:${model}:consumed`,
  userCode: (model: string, userCode: string) => `oidc:userCode:{${oidcDigest(userCode)}}:${model}`,
  uid: (model: string, uid: string) => `oidc:uid:{${oidcDigest(uid)}}:${model}`,
  grant: (grantId: string) => `oidc:grant:{${grantDigest(grantId)}}`,
  client: (clientId: string) => `oidc:client:{${clientDigest(clientId)}}`,
};

/** Models indexed by client, so that deleting a client (or rotating its secret) ends its tokens. */
const CLIENT_BOUND_MODELS: ReadonlySet<string> = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'ClientCredentials',
  'BackchannelAuthenticationRequest',
  'Grant',
]);

/** Models oidc-provider marks consumed (adapter.consume): only these have a consumed marker. */
const CONSUMABLE_MODELS: ReadonlySet<string> = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PushedAuthorizationRequest', 'PreAuthorizedCode']);

/** Models whose tokens introspection answers (and caches): their end is published. */
const INTROSPECTED_MODELS: ReadonlySet<string> = new Set(['AccessToken', 'ClientCredentials', 'RefreshToken']);

/**
 * A device code is kept this long past its expiry, so that a poll after expiry is answered
 * expired_token (RFC 8628 §3.5) rather than invalid_grant for a code that vanished.
 */
export const DEVICE_CODE_GRACE_MS = 10 * 60 * 1000;

/** The key under which a model's payload with this id is stored (for tests and diagnostics). */
export function oidcKeyFor(modelName: string, id: string): string {
  return keys.payload(modelName, oidcDigest(id));
}

/** The key of the consumed marker of a model's payload with this id. */
export function oidcConsumedKeyFor(modelName: string, id: string): string {
  return keys.consumed(modelName, oidcDigest(id));
}

/** The key of the set of payload keys issued under a grant. */
export function oidcGrantKeyFor(grantId: string): string {
  return keys.grant(grantId);
}

/**
 * expiresIn (seconds) as a TTL in ms; null when the payload has already expired. Missing, NaN or
 * infinite ("never") becomes the bounded default.
 */
function ttlMsFor(expiresIn: number | undefined): number | null {
  if (typeof expiresIn === 'number' && expiresIn <= 0) return null;
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn)) return DEFAULT_TTL_SECONDS * 1000;
  return Math.ceil(expiresIn * 1000);
}

function parsePayload(raw: string): AdapterPayload {
  const value: unknown = JSON.parse(raw);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('an oidc-provider payload in the ephemeral store is not a JSON object');
  }
  return value as AdapterPayload;
}

/**
 * A payload as oidc-provider wants it back from what the store holds: its id put back where it was
 * left out, `consumed` from the marker. undefined when there is none.
 */
function storedPayload(raw: string | null | undefined, id: string | undefined, consumed: string | null | undefined = null): AdapterPayload | undefined {
  if (raw === null || raw === undefined) return undefined;
  const payload = parsePayload(raw);
  if (id !== undefined && payload.jti === undefined) payload.jti = id;
  if (consumed !== null && consumed !== undefined) payload.consumed = Number(consumed);
  return payload;
}

/** A payload without a consumed marker (a model that has none), with its id put back. */
async function readPayload(store: EphemeralStore, model: string, digest: string, id?: string): Promise<AdapterPayload | undefined> {
  return storedPayload(await store.get(keys.payload(model, digest)), id);
}

/** Grants by id, in memory on each node (see createGrantCache). */
export type GrantCache = RecordCache<AdapterPayload>;

/** How long a grant is kept in memory at most; invalidations end it sooner. */
export const GRANT_CACHE_TTL_MS = 30_000;

/**
 * Grants kept in memory between the requests that read them: every refresh of a login, and every
 * introspection of its tokens, reads its grant, and a grant changes once or twice in its life.
 * Correct across nodes as every record cache is (record-cache.ts): the adapter publishes a grant's
 * target whenever it saves, revokes or removes one, and while the invalidation channel is down
 * every read goes to the store. A grant that is not there is never remembered (it may be being
 * created), and one past its expiry is never answered.
 */
export function createGrantCache(store: EphemeralStore, options: { ttlMs?: number; clock?: () => number } = {}): GrantCache {
  return createRecordCache<AdapterPayload>({
    load: (grantId) => readPayload(store, 'Grant', oidcDigest(grantId), grantId),
    target: invalidationTarget.grant,
    ttlMs: options.ttlMs ?? GRANT_CACHE_TTL_MS,
    missingTtlMs: 0,
    // The store forgets a grant at its expiry; a copy in memory must not outlive it.
    expiresAt: (grant) => (typeof grant.exp === 'number' ? grant.exp * 1000 : undefined),
    ...(options.clock ? { clock: options.clock } : {}),
  });
}

/**
 * The first of `models` that holds a token with this value, with its payload (`consumed` from the
 * marker): one MGET for them all, since every model's keys for one value share its hash tag. This
 * is introspection's lookup, where the kind of an opaque token is not known in advance.
 */
export async function findOidcToken(store: EphemeralStore, value: string, models: readonly string[]): Promise<{ model: string; payload: AdapterPayload } | undefined> {
  const digest = oidcDigest(value);
  const found = await store.getMany(models.flatMap((model) => [keys.payload(model, digest), keys.consumed(model, digest)]));
  for (const [index, model] of models.entries()) {
    const payload = storedPayload(found[index * 2], value, found[index * 2 + 1]);
    if (payload) return { model, payload };
  }
  return undefined;
}

/** Whether the raw id must stay in the payload: a lookup by another value has to return it. */
function keepsJti(payload: AdapterPayload): boolean {
  return typeof payload.userCode === 'string' || typeof payload.uid === 'string';
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

    /** Deletes a payload, its marker and the lookups that point to it; returns the payload. */
    async function removeRecord(recordModel: string, digest: string): Promise<AdapterPayload | undefined> {
      const payloadKey = keys.payload(recordModel, digest);
      const raw = await store.get(payloadKey);
      // The consumed marker stays until its own TTL ends: deleting it would let a redemption that
      // read the payload before this removal win its SET NX afterwards (a second success in a
      // race where another request found the token consumed and destroyed it).
      await store.del(payloadKey);
      if (INTROSPECTED_MODELS.has(recordModel)) await invalidate(invalidationTarget.oauthToken(digest));
      else if (recordModel === 'Grant') await invalidate(invalidationTarget.grantDigest(digest));
      if (raw === null) return undefined;
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
      return payload;
    }

    /**
     * Deletes every record an index (a grant's, a client's) lists, one member at a time (each
     * payload and its marker share a slot; different members do not). Each member leaves the
     * index once deleted, and the index disappears with its last member: a token issued meanwhile
     * keeps its entry, so a later revocation still finds it (deleting the whole index at the end
     * would lose it).
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

        // The indexes and the payload are written together: the token is handed out only once all
        // of them are stored, so a failure (or a crash) in between leaves at worst an index entry
        // without a payload, or a payload nobody was given, never a token its grant's or client's
        // revocation would miss.
        const writes: Promise<unknown>[] = [];
        if (GRANT_BOUND_MODELS.has(model) && typeof payload.grantId === 'string') {
          writes.push(store.addToSet(keys.grant(payload.grantId), payloadKey, ttlMs));
        }
        if (CLIENT_BOUND_MODELS.has(model) && typeof payload.clientId === 'string') {
          writes.push(store.addToSet(keys.client(payload.clientId), payloadKey, ttlMs));
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
          // The marker, if there is one (or this save carries `consumed`), must live as long as the
          // payload, or the payload would become unused again: both in one atomic step.
          const marker = typeof consumed === 'number' || (typeof consumed === 'string' && consumed !== '') ? String(consumed) : undefined;
          writes.push(store.setWithCompanion(payloadKey, json, ttlMs, { key: keys.consumed(model, digest), ttlMs: ttlMs + MARKER_MARGIN_MS, value: marker }));
        } else {
          writes.push(store.set(payloadKey, json, { ttlMs }));
        }
        await Promise.all(writes);
        // Every node's copy of a grant goes once the new one is stored (one read meanwhile would
        // keep the old one otherwise).
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
        // One atomic step: of any number of concurrent redemptions, exactly one writes the marker,
        // and only while the payload exists; the marker lives as long as the payload (a later
        // re-save extends it, see upsert).
        const marked = store.setIfAbsentAlongside(markerKey, String(Math.floor(clock() / 1000)), payloadKey, MARKER_MARGIN_MS);
        // The invalidation follows the marker's write on the same connection without waiting for
        // its answer: one round trip, not two, before the rotated token is answered. Whoever reads
        // the token after the message reads the marker. Should the redemption fail (consumed
        // already, or gone), invalidating its cached answers was harmless.
        const [outcome] = await Promise.all([marked, introspected ? invalidate(invalidationTarget.oauthToken(digest)) : undefined]);
        if (outcome === 'missing') throw new errors.InvalidGrant(`${label} not found`);
        if (outcome === 'exists') throw new errors.InvalidGrant(`${label} already consumed`);
      },

      async destroy(id) {
        prefetched.delete(id);
        const digest = oidcDigest(id);
        // (removeRecord tells every node once the record is gone, so that no node reads it again
        // between the message and the deletion and keeps what it read.)
        const payload = await removeRecord(model, digest);
        if (payload && GRANT_BOUND_MODELS.has(model) && typeof payload.grantId === 'string') {
          await store.removeFromSet(keys.grant(payload.grantId), keys.payload(model, digest));
        }
        if (payload && CLIENT_BOUND_MODELS.has(model) && typeof payload.clientId === 'string') {
          await store.removeFromSet(keys.client(payload.clientId), keys.payload(model, digest));
        }
      },

      // Cached answers are ended once the records are gone (also when the sweep fails half-way):
      // ended before, a node could read a record again meanwhile and keep what it read.
      async revokeByClientId(clientId) {
        try {
          await sweepIndex(keys.client(clientId));
        } finally {
          await invalidate(invalidationTarget.client(clientId));
        }
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
