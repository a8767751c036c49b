import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { oidcDigest } from './oidc-keys.ts';

// A token issued by token exchange (RFC 8693) is a JWT that nothing stores, and it must end with
// the credential it was exchanged for. So the exchange leaves a record, by the token's jti, of what
// that credential depended on (its links); introspection reads it when it verifies the token afresh
// and answers inactive once any link is gone, or the record is (docs/token-exchange.md). No link
// is a credential: tokens appear as digests, as in the store's own keys.

/** RFC 8693 §4.1: who acts for the subject of an exchanged token; `act` within it: who acted before. */
export interface ActClaim {
  sub: string;
  client_id?: string;
  act?: ActClaim;
}

/** One thing an exchanged token's subject credential depends on, checkable without the credential itself. */
export type CredentialLink =
  | { type: 'personal_token'; id: string }
  /** An API session, by the digest of its token (the session store's key). */
  | { type: 'session'; digest: string }
  /** An opaque OAuth access token, by the digest the adapter keys it with. */
  | { type: 'oauth_token'; digest: string }
  /** An oidc-provider grant (a person's login). */
  | { type: 'grant'; id: string }
  /** A JWT access token without a grant, by its jti (its revocation record: jwt-revocations.ts). */
  | { type: 'jwt'; jti: string }
  | { type: 'client'; id: string };

/** The record outlives the token by this much (clocks of the nodes a little apart), as revocations do. */
const MARGIN_MS = 60_000;

const recordKey = (jti: string) => `oidc:{${oidcDigest(jti)}}:ExchangedToken`;

export interface ExchangedTokens {
  /** Records the links of the token with this jti, expiring at `exp` (epoch seconds). */
  record(jti: string, exp: number, links: readonly CredentialLink[]): Promise<void>;
  /** The links of an exchanged token, or null when there is no record (then it is not active). */
  links(jti: string): Promise<CredentialLink[] | null>;
}

const LINK_FIELDS: Readonly<Record<CredentialLink['type'], string>> = {
  personal_token: 'id',
  session: 'digest',
  oauth_token: 'digest',
  grant: 'id',
  jwt: 'jti',
  client: 'id',
};

function isLink(value: unknown): value is CredentialLink {
  if (typeof value !== 'object' || value === null) return false;
  const { type } = value as { type?: unknown };
  const field = typeof type === 'string' && Object.hasOwn(LINK_FIELDS, type) ? LINK_FIELDS[type as CredentialLink['type']] : undefined;
  return field !== undefined && typeof (value as Record<string, unknown>)[field] === 'string';
}

/** Records on the ephemeral store, written durably (a failover must not make a token inactive, nor keep one). */
export function createExchangedTokens(store: EphemeralStore): ExchangedTokens {
  return {
    async record(jti, exp, links) {
      const ttlMs = exp * 1000 - Date.now() + MARGIN_MS;
      await store.set(recordKey(jti), JSON.stringify(links), { ttlMs: Math.max(ttlMs, MARGIN_MS), durable: true });
    },

    async links(jti) {
      const raw = await store.get(recordKey(jti));
      if (raw === null) return null;
      const parsed: unknown = JSON.parse(raw);
      if (!Array.isArray(parsed) || !parsed.every(isLink)) throw new Error('an exchanged-token record in the ephemeral store is malformed');
      return parsed;
    },
  };
}
