import { jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { JwtRevocations } from '../adapter/jwt-revocations.ts';

/** The claim that ties a JWT access token to its grant, so introspection can end it with the grant. */
export const JWT_GRANT_CLAIM = 'tessera_grant';

export interface JwtAccessTokenRevocationDependencies {
  issuer: string;
  /** The published signing key a JWT's header names. */
  verificationKey: JWTVerifyGetKey;
  /** Ends a login: every token issued under the grant, and the grant. */
  revokeGrant: (grantId: string) => Promise<void>;
  jwtRevocations: Pick<JwtRevocations, 'revoke'>;
}

/** What a revocation ended, for the audit log: whose token, under which grant (null: client credentials). */
export interface RevokedJwt {
  clientId: string;
  userId: string | null;
  grantId: string | null;
}

/**
 * RFC 7009 revocation of Tessera's JWT access tokens, which oidc-provider refuses
 * (`unsupported_token_type`: it cannot revoke what it does not store). One issued under a grant
 * (device or browser login) ends the login, as revoking its refresh token does; one without (client
 * credentials) is recorded by jti until it expires (jwt-revocations.ts). `mayRevoke` is the
 * revocation endpoint's policy; a token that does not verify, or the caller may not revoke, is left
 * alone and the caller still answered 200 (RFC 7009 §2.2).
 */
export function createJwtAccessTokenRevocation(deps: JwtAccessTokenRevocationDependencies) {
  return async function revokeJwtAccessToken(token: string, mayRevoke: (tokenClientId: unknown) => boolean): Promise<RevokedJwt | null> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, deps.verificationKey, { issuer: deps.issuer, typ: 'at+jwt' }));
    } catch {
      return null;
    }
    if (!mayRevoke(payload.client_id)) return null;
    const grantId = payload[JWT_GRANT_CLAIM];
    const revoked = { clientId: String(payload.client_id), userId: typeof payload.sub === 'string' && payload.sub !== payload.client_id ? payload.sub : null };
    if (typeof grantId === 'string') {
      await deps.revokeGrant(grantId);
      return { ...revoked, grantId };
    }
    if (typeof payload.jti === 'string' && typeof payload.exp === 'number') {
      await deps.jwtRevocations.revoke(payload.jti, payload.exp);
      return { ...revoked, grantId: null };
    }
    return null;
  };
}
