import type { UserCache } from '../../accounts/user-cache.ts';
import { formDecode, parseBasicAuthorization } from '../../credentials/basic-auth.ts';
import { OAuthError } from '../../shared/errors.ts';
import { anyCovers, readScope } from '../../shared/path-scopes.ts';
import type { OidcAdapter } from '../adapter/oidc-adapter.ts';
import { CODE_VERIFIER, type DevicePollPolicy } from '../device/device-poll-policy.ts';

// Tessera's rules on a token request, checked before a direct grant or oidc-provider sees it.

/** What the token endpoint's rules read. */
export interface TokenRequestRuleDependencies {
  devicePolls: DevicePollPolicy;
  /** The scopes a client may obtain. */
  clientScopes(clientId: string): Promise<string[]>;
  /**
   * For a refresh token: the scopes its user may still be granted today, or null when the token is
   * unknown (oidc-provider then answers invalid_grant itself).
   */
  refreshTokenUserScopes(refreshToken: string): Promise<{ granted: string[]; allowed: string[] } | null>;
  /** The scope catalog's path-scoped names (config.pathScopes): a held path scope covers narrower ones. */
  pathScopes?: readonly string[];
}

/**
 * The token endpoint's rules beyond oidc-provider's: device polls (slow_down, PKCE), refresh
 * narrowed to what the user may still have, client credentials narrowed to the client's scopes
 * (`read` when none is named; never offline_access or openid: no refresh tokens, no users).
 * A refusal is thrown (an OAuthError); null lets the request go on to oidc-provider as it came,
 * 'amended' with `form` as the check changed it.
 */
export type TokenRequestCheck = (form: URLSearchParams, authorization: string | undefined) => Promise<'amended' | null>;

export function createTokenRequestCheck({ devicePolls, clientScopes, refreshTokenUserScopes, pathScopes = [] }: TokenRequestRuleDependencies): TokenRequestCheck {
  const pathScoped = new Set(pathScopes);
  return async (form, authorization) => {
    const grantType = form.get('grant_type');
    // A path scope whose path the rules refuse ("storage.read:/a/../b") is refused by name.
    for (const scope of (form.get('scope') ?? '').split(' ')) {
      const reading = readScope(scope, pathScoped);
      if (reading.kind === 'invalid') throw new OAuthError(400, 'invalid_scope', reading.problem);
    }
    if (grantType === 'urn:ietf:params:oauth:grant-type:device_code') {
      const deviceCode = form.get('device_code');
      if (!deviceCode) return null; // oidc-provider answers the missing parameter.
      const verifier = form.get('code_verifier') ?? undefined;
      if (verifier !== undefined && !CODE_VERIFIER.test(verifier)) {
        throw new OAuthError(400, 'invalid_request', 'code_verifier must be 43-128 characters of [A-Za-z0-9-._~]');
      }
      if ((await devicePolls.poll(deviceCode)) === 'slow_down') {
        throw new OAuthError(400, 'slow_down', 'polling too frequently; wait longer between requests');
      }
      const pkce = await devicePolls.verifyPkce(deviceCode, verifier);
      if (pkce !== 'ok') {
        const description = {
          missing_verifier: 'code_verifier required: a code_challenge was sent with this device code',
          mismatch: 'PKCE verification failed',
          unexpected_verifier: 'code_verifier sent, but no code_challenge was sent with this device code',
        }[pkce];
        throw new OAuthError(400, 'invalid_grant', description);
      }
      if (verifier === undefined) return null;
      form.delete('code_verifier');
      return 'amended';
    }
    if (grantType === 'refresh_token' && form.get('refresh_token')) {
      // The user's allowed scopes may have shrunk since the grant: a refresh never gives more
      // than they may have now.
      const scopes = await refreshTokenUserScopes(form.get('refresh_token')!);
      if (scopes) {
        const requested = (form.get('scope') ?? '').split(' ').filter(Boolean);
        const wanted = requested.length ? requested : scopes.granted;
        // Scopes beyond the token's are left in: oidc-provider answers those with invalid_scope.
        const kept = wanted.filter((scope) => anyCovers(scopes.allowed, scope, pathScoped) || !scopes.granted.includes(scope));
        if (kept.length < wanted.length) {
          if (!kept.some((scope) => scope !== 'openid' && scope !== 'offline_access')) {
            throw new OAuthError(400, 'invalid_grant', 'the account may no longer be granted any of these scopes');
          }
          form.set('scope', kept.join(' '));
          return 'amended';
        }
      }
      return null;
    }
    if (grantType === 'client_credentials') {
      // Narrowing only: the client is authenticated afterwards by oidc-provider.
      const clientId = basicClientId(authorization) ?? form.get('client_id');
      const allowed = new Set(clientId ? await clientScopes(clientId) : []);
      const requested = (form.get('scope') ?? '').split(' ').filter(Boolean);
      const scopes = (requested.length ? requested : ['read']).filter((scope) => anyCovers(allowed, scope, pathScoped) && scope !== 'offline_access' && scope !== 'openid');
      if (scopes.length === 0 && clientId && allowed.size > 0) {
        // Dropping every scope would give a token good for nothing: say so instead.
        throw new OAuthError(400, 'invalid_scope', 'none of the requested scopes may be granted to this client');
      }
      const scope = scopes.length ? scopes.join(' ') : null;
      if (scope === form.get('scope')) return null;
      if (scope) form.set('scope', scope);
      else form.delete('scope');
      return 'amended';
    }
    return null;
  };
}

function basicClientId(header: string | undefined): string | undefined {
  const credentials = parseBasicAuthorization(header);
  return credentials && (formDecode(credentials.id) ?? credentials.id);
}

/**
 * refreshTokenUserScopes from oidc-provider's stored refresh tokens and the users: what the grant
 * holds, and what the user may be granted today (their allowed scopes and the protocol scopes).
 */
export function refreshTokenUserScopesFrom(refreshTokens: Pick<OidcAdapter, 'prefetch'>, users: Pick<UserCache, 'peekUser'>): TokenRequestRuleDependencies['refreshTokenUserScopes'] {
  return async (value) => {
    const token = await refreshTokens.prefetch(value);
    if (!token || typeof token.accountId !== 'string') return null;
    const user = await users.peekUser(token.accountId);
    if (!user) return null;
    return { granted: String(token.scope ?? '').split(' ').filter(Boolean), allowed: [...user.allowedScopes, 'openid', 'offline_access'] };
  };
}
