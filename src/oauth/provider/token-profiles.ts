// The claims of a JWT access token per its resource server's profile (oauth.resources.<aud>.profile):
// RFC 9068 as oidc-provider builds it, the WLCG Common JWT Profile 1.0, or SciTokens 2.0. Run as
// oidc-provider's formats.customizers.jwt. What each profile holds: docs/wlcg-tokens.md.
import type { TokenProfile } from '../../config/schema.ts';
import { JWT_GRANT_CLAIM } from './jwt-access-token-revocation.ts';

/** The WLCG profile's audience meaning "any relying party that trusts the issuer". */
export const WLCG_ANY_AUDIENCE = 'https://wlcg.cern.ch/jwt/v1/any';
/** Group scopes ("wlcg.groups:/vo/group"): requested as scopes, issued in the wlcg.groups claim. */
const WLCG_GROUP_SCOPE = 'wlcg.groups';

/**
 * Claims every profile keeps besides its own: client_id (RFC 9068), Tessera's grant reference (how
 * revocation reaches a JWT), and what must never be lost by reshaping: a sender constraint (`cnf`,
 * RFC 9449 / 8705) and a delegation's actor (`act`, RFC 8693).
 */
const ALWAYS_KEPT = ['client_id', JWT_GRANT_CLAIM, 'cnf', 'act'];

/** The claims a profile keeps from oidc-provider's payload (anything else is dropped). */
const KEPT: Record<Exclude<TokenProfile, 'rfc9068'>, readonly string[]> = {
  // WLCG 1.0 §"Common Claims": iss, sub, aud, exp, iat, nbf, jti, scope, wlcg.ver, wlcg.groups.
  wlcg: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'scope', ...ALWAYS_KEPT],
  // SciTokens 2.0: ver, iss, sub, aud, exp, iat, nbf, jti, scope.
  scitokens: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'scope', ...ALWAYS_KEPT],
};

type Payload = Record<string, unknown>;

/** The payload `profile` wants, made from the one oidc-provider built (RFC 9068's). */
export function shapeForProfile(profile: TokenProfile, payload: Payload): Payload {
  if (profile === 'rfc9068') return payload;
  const shaped: Payload = {};
  for (const claim of KEPT[profile]) if (payload[claim] !== undefined) shaped[claim] = payload[claim];
  // Both profiles want nbf; the token is valid from its issue.
  shaped.nbf = payload.iat;
  const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
  if (profile === 'wlcg') {
    shaped['wlcg.ver'] = '1.0';
    const groups = scopes.filter((scope) => scope.startsWith(`${WLCG_GROUP_SCOPE}:/`)).map((scope) => scope.slice(WLCG_GROUP_SCOPE.length + 1));
    const capabilities = scopes.filter((scope) => scope !== WLCG_GROUP_SCOPE && !scope.startsWith(`${WLCG_GROUP_SCOPE}:/`));
    if (groups.length) shaped['wlcg.groups'] = groups;
    if (capabilities.length) shaped.scope = capabilities.join(' ');
    else delete shaped.scope;
  } else {
    shaped.ver = 'scitoken:2.0';
  }
  return shaped;
}
