import { sha256Base64url } from '../../shared/sha256.ts';

// Where oidc-provider's artefacts live in the ephemeral store. No token, code, user code, session
// uid or grant id appears in a key: each stands as its SHA-256 (`d(x)`, base64url). The part in
// braces is the Redis Cluster hash tag. Layout: docs/design/oidc-adapter.md.

/** SHA-256 in base64url: what stands for a token, code or id in every key name. */
export function oidcDigest(value: string): string {
  return sha256Base64url(value);
}

/** Digests of ids that come back request after request, remembered up to `max` at a time. */
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
// A client's id is on each of its tokens; a grant's on the refresh and access token of one refresh.
const clientDigest = rememberedDigests(1000);
const grantDigest = rememberedDigests(10_000);

export const oidcKeys = {
  /** oidc:{d(id)}:<Model>: the payload, as JSON. */
  payload: (model: string, digest: string) => `oidc:{${digest}}:${model}`,
  /** oidc:{d(id)}:<Model>:consumed: when it was consumed (epoch seconds); outlives the payload. */
  consumed: (model: string, digest: string) => `oidc:{${digest}}:${model}:consumed`,
  /** → d(id), for findByUserCode (device flow). */
  userCode: (model: string, userCode: string) => `oidc:userCode:{${oidcDigest(userCode)}}:${model}`,
  /** → d(id), for findByUid (sessions). */
  uid: (model: string, uid: string) => `oidc:uid:{${oidcDigest(uid)}}:${model}`,
  /** oidc:{d(token)}:RefreshToken:rotation: when a refresh claimed the token's rotation (clock ms), for the reuse grace. */
  rotationClaim: (digest: string) => `oidc:{${digest}}:RefreshToken:rotation`,
  /** oidc:{d(token)}:RefreshToken:answer: its rotation's answer, encrypted under a key only the token's value gives. */
  reuseAnswer: (digest: string) => `oidc:{${digest}}:RefreshToken:answer`,
  /** The set of payload keys issued under a grant. */
  grant: (grantId: string) => oidcKeys.grantByDigest(grantDigest(grantId)),
  /** The same, by the digest of the grant id (the digest in the grant's own payload key). */
  grantByDigest: (digest: string) => `oidc:grant:{${digest}}`,
  /** The set of payload keys of an account's grants and sessions (its logins). */
  account: (accountId: string) => `oidc:account:{${oidcDigest(accountId)}}`,
  /** oidc:{d(jti)}:RevokedJwt: present while a revoked JWT access token without a grant would still verify (jwt-revocations.ts). */
  revokedJwt: (jti: string) => `oidc:{${oidcDigest(jti)}}:RevokedJwt`,
  /** The set of payload keys issued to a client. */
  client: (clientId: string) => `oidc:client:{${clientDigest(clientId)}}`,
};

/** A payload key: its digest and model. */
export const PAYLOAD_KEY = /^oidc:\{([A-Za-z0-9_-]{43})\}:([A-Za-z]+)$/;

/** The key under which a model's payload with this id is stored (for tests and diagnostics). */
export function oidcKeyFor(modelName: string, id: string): string {
  return oidcKeys.payload(modelName, oidcDigest(id));
}

/** The key of the consumed marker of a model's payload with this id. */
export function oidcConsumedKeyFor(modelName: string, id: string): string {
  return oidcKeys.consumed(modelName, oidcDigest(id));
}

/** The key of the set of payload keys issued under a grant. */
export function oidcGrantKeyFor(grantId: string): string {
  return oidcKeys.grant(grantId);
}
