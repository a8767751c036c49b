import type { AdapterPayload } from 'oidc-provider';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { oidcDigest, oidcKeys } from './oidc-keys.ts';

// oidc-provider's payloads as the store holds them: the raw id (`jti`) left out unless a lookup by
// another value must return it, `consumed` in a marker of its own.

export function parsePayload(raw: string): AdapterPayload {
  const value: unknown = JSON.parse(raw);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('an oidc-provider payload in the ephemeral store is not a JSON object');
  }
  return value as AdapterPayload;
}


/** A payload as oidc-provider wants it back: its id put back, `consumed` from the marker; undefined when there is none. */
export function storedPayload(raw: string | null | undefined, id: string | undefined, consumed: string | null | undefined = null): AdapterPayload | undefined {
  if (raw === null || raw === undefined) return undefined;
  const payload = parsePayload(raw);
  if (id !== undefined && payload.jti === undefined) payload.jti = id;
  if (consumed !== null && consumed !== undefined) payload.consumed = Number(consumed);
  return payload;
}

/** A payload without a consumed marker (a model that has none), with its id put back. */
export async function readPayload(store: EphemeralStore, model: string, digest: string, id?: string): Promise<AdapterPayload | undefined> {
  return storedPayload(await store.get(oidcKeys.payload(model, digest)), id);
}

/** Whether the raw id must stay in the payload: a lookup by another value (user code, uid) has to return it. */
export function keepsJti(payload: AdapterPayload): boolean {
  return typeof payload.userCode === 'string' || typeof payload.uid === 'string';
}

/**
 * The first of `models` that holds a token with this value, with its payload: one MGET for them
 * all (every model's keys for one value share its hash tag). Introspection's lookup, where the kind
 * of an opaque token is not known in advance.
 */
export async function findOidcToken(store: EphemeralStore, value: string, models: readonly string[]): Promise<{ model: string; payload: AdapterPayload } | undefined> {
  return findOidcTokenByDigest(store, oidcDigest(value), models, value);
}

/** The same by the digest of the value (what a token exchanged for it remembers); the payload then has no id. */
export async function findOidcTokenByDigest(store: EphemeralStore, digest: string, models: readonly string[], value?: string): Promise<{ model: string; payload: AdapterPayload } | undefined> {
  const found = await store.getMany(models.flatMap((model) => [oidcKeys.payload(model, digest), oidcKeys.consumed(model, digest)]));
  for (const [index, model] of models.entries()) {
    const payload = storedPayload(found[index * 2], value, found[index * 2 + 1]);
    if (payload) return { model, payload };
  }
  return undefined;
}
