import { CompactSign } from 'jose';
import type { PublishedSigningKeys } from '../oauth/published-signing-keys.ts';

/** RFC 9701 §5: the media type of a signed answer, and (without `application/`) its JWT `typ`. */
export const INTROSPECTION_JWT_MEDIA_TYPE = 'application/token-introspection+jwt';
export const INTROSPECTION_JWT_TYPE = 'token-introspection+jwt';

export interface IntrospectionSignerDependencies {
  issuer: string;
  /** The key that signs tokens now. */
  signingKeys: Pick<PublishedSigningKeys, 'currentSigningKey'>;
  clock?: () => number;
}

/**
 * Signs an introspection answer (RFC 9701) with the key that signs Tessera's tokens, published at
 * jwks_uri: header `typ` token-introspection+jwt and `kid`; claims `iss`, `aud` (the resource
 * server asking), `iat` and `token_introspection`, the very JSON text the plain answer has. No
 * `sub` or `exp` at the top (RFC 9701 §5: the answer must not pass for an access token).
 */
export function createIntrospectionSigner(deps: IntrospectionSignerDependencies) {
  const clock = deps.clock ?? Date.now;
  const issuerJson = JSON.stringify(deps.issuer);
  const encoder = new TextEncoder();
  return {
    /** The compact JWS of `answerJson` (an answer as serialised for the JSON path) for `audience`. */
    async sign(audience: string, answerJson: string): Promise<string> {
      const { kid, alg, key } = await deps.signingKeys.currentSigningKey();
      const payload = `{"iss":${issuerJson},"aud":${JSON.stringify(audience)},"iat":${Math.floor(clock() / 1000)},"token_introspection":${answerJson}}`;
      return new CompactSign(encoder.encode(payload)).setProtectedHeader({ alg, kid, typ: INTROSPECTION_JWT_TYPE }).sign(key);
    },
  };
}

export type IntrospectionSigner = ReturnType<typeof createIntrospectionSigner>;
