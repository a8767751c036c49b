import type Provider from 'oidc-provider';
import { authenticatedClient, needsProvider, onlyParameters, resourceServerFor, SCOPE_SYNTAX, type DirectGrant, type OidcClient, type ResourceServerInfo } from './direct-grant.ts';

export interface RefreshTokenGrantDependencies {
  provider: Provider;
  /** The configured `findAccount` (it reads no request context): undefined for an account that may no longer sign in. */
  findAccount(accountId: string): Promise<{ accountId: string } | undefined>;
  /** Whether the configuration rotates every refresh token (`rotateRefreshToken: true`); otherwise nothing is issued here. */
  rotates: boolean;
  resourceServerInfo: ResourceServerInfo;
}

/** The only parameters a request may carry to be issued here; anything else goes to oidc-provider. */
const PARAMETERS: ReadonlySet<string> = new Set(['grant_type', 'refresh_token', 'scope', 'client_id']);

const GTY = 'refresh_token';

/** The members of a stored refresh token that a direct grant reads (oidc-provider's RefreshToken model). */
interface StoredRefreshToken {
  clientId: string;
  grantId: string;
  accountId: string;
  scope?: string;
  readonly scopes: Set<string>;
  readonly resourceIndicators: Set<string>;
  resource?: string | string[];
  consumed?: unknown;
  readonly isExpired: boolean;
  gty?: string;
  rotations?: number;
  rar?: unknown;
  jkt?: string;
  'x5t#S256'?: string;
  attestationJkt?: string;
  acr?: string;
  amr?: string[];
  authTime?: number;
  claims?: unknown;
  expiresWithSession?: boolean;
  iiat?: number;
  nonce?: string;
  sessionUid?: string;
  sid?: string;
  consume(): Promise<void>;
  save(): Promise<string>;
}

interface StoredGrant {
  clientId: string;
  accountId: string;
  readonly isExpired: boolean;
  getResourceScopeFiltered(resource: string, filter: string[]): string;
}

/**
 * refresh_token on the token endpoint without oidc-provider's koa stack: every command-line login
 * refreshes its access token this way, and koa's context, router and middleware chain cost as much
 * as the grant's own work. The grant is oidc-provider's own refresh_token handler
 * (lib/actions/grants/refresh_token.js) step for step, on its own models: the refresh token is
 * found (the check in oauth-request-guard.ts has already read it: no second read), its grant and
 * account are checked, the token is consumed (atomically: of two concurrent refreshes one wins)
 * and rotated, and an access token is issued for the token's resource with the scopes the grant
 * holds there, saved through the same adapter and answered in the same shape.
 *
 * Only the request oidc-provider would grant without anything more is issued here: a public
 * client (a command-line tool, by client_id alone; confidential clients stay with oidc-provider);
 * the four parameters above at most once each; no Origin, DPoP or attestation; a refresh token of
 * that client that is current, unconsumed, bound to no key or certificate, without authorization
 * details or `openid` (an ID token), issued for one resource; a grant and an account that still
 * exist. Everything else, every refusal included (a consumed token, whose reuse revokes its grant,
 * among them), is answered by oidc-provider exactly as before: this returns null before it changes
 * anything. Once the token is consumed it can only throw: an oidc-provider error (a concurrent
 * refresh consumed it first) or a store failure.
 */
export function createRefreshTokenGrant(deps: RefreshTokenGrantDependencies): DirectGrant {
  const { provider } = deps;
  const RefreshToken = provider.RefreshToken as unknown as { new (fields: Record<string, unknown>): StoredRefreshToken; find(value: string, options: { ignoreExpiration: boolean }): Promise<StoredRefreshToken | undefined> };
  const Grant = provider.Grant as unknown as { find(id: string, options: { ignoreExpiration: boolean }): Promise<StoredGrant | undefined> };

  /** Whether the request is this grant's: the checks oidc-provider makes before it consumes the token, and a resource it would accept afterwards (null otherwise). */
  async function redeemable(value: string, client: OidcClient, scope: string | undefined) {
    const token = await RefreshToken.find(value, { ignoreExpiration: true });
    if (!token || token.clientId !== client.clientId || token.isExpired || token.consumed) return null;
    if (token['x5t#S256'] || token.jkt || token.attestationJkt || token.rar !== undefined) return null;
    const grant = await Grant.find(token.grantId, { ignoreExpiration: true });
    if (!grant || grant.isExpired || grant.clientId !== client.clientId) return null;
    const requested = scope === undefined ? token.scopes : new Set(scope.split(' '));
    if (scope !== undefined && [...requested].some((name) => !token.scopes.has(name))) return null;
    if (requested.has('openid')) return null;
    // The token's granted resource (useGrantedResource), a single one.
    const resource = token.resource;
    if (typeof resource !== 'string' || !token.resourceIndicators.has(resource)) return null;
    const resourceServer = resourceServerFor(provider, resource, client, deps.resourceServerInfo);
    if (!resourceServer) return null;
    const account = await deps.findAccount(token.accountId);
    if (!account || typeof account.accountId !== 'string' || account.accountId === '' || token.accountId !== grant.accountId) return null;
    return { token, grant, requested, resource, resourceServer, account };
  }

  return async (form, headers) => {
    if (!deps.rotates || form.get('grant_type') !== GTY) return null;
    if (needsProvider(headers) || !onlyParameters(form, PARAMETERS)) return null;
    const value = form.get('refresh_token');
    const scope = form.get('scope') ?? undefined;
    if (!value || (scope !== undefined && !SCOPE_SYNTAX.test(scope))) return null;
    const client = await authenticatedClient(provider, form, headers, { secret: false, public: true });
    if (!client || !client.grantTypeAllowed(GTY)) return null;
    const found = await redeemable(value, client, scope);
    if (!found) return null;
    const { token, grant, requested, resource, resourceServer, account } = found;

    // From here on the request is this grant's to answer.
    await token.consume();
    const rotated = new RefreshToken({
      accountId: token.accountId,
      acr: token.acr,
      amr: token.amr,
      authTime: token.authTime,
      claims: token.claims,
      client,
      expiresWithSession: token.expiresWithSession,
      iiat: token.iiat,
      grantId: token.grantId,
      gty: token.gty,
      nonce: token.nonce,
      resource: token.resource,
      rotations: typeof token.rotations === 'number' ? token.rotations + 1 : 1,
      scope: token.scope,
      sessionUid: token.sessionUid,
      sid: token.sid,
    });
    if (rotated.gty && !rotated.gty.endsWith(GTY)) rotated.gty = `${rotated.gty} ${GTY}`;
    const refreshToken = await rotated.save();

    const accessToken = new provider.AccessToken({
      accountId: account.accountId,
      client,
      expiresWithSession: rotated.expiresWithSession,
      grantId: rotated.grantId,
      gty: rotated.gty,
      sessionUid: rotated.sessionUid,
      sid: rotated.sid,
    } as never);
    const issued = accessToken as unknown as { gty?: string; scope?: string; expiration: number; tokenType: string };
    if (issued.gty && !issued.gty.endsWith(GTY)) issued.gty = `${issued.gty} ${GTY}`;
    accessToken.resourceServer = resourceServer;
    issued.scope = grant.getResourceScopeFiltered(resource, [...requested].filter((name) => resourceServer.scopes.has(name)));
    const accessTokenValue = await accessToken.save();
    const answeredScope = rotated.scope ? issued.scope : issued.scope || undefined;
    return {
      access_token: accessTokenValue,
      expires_in: issued.expiration,
      refresh_token: refreshToken,
      ...(answeredScope !== undefined ? { scope: answeredScope } : {}),
      token_type: issued.tokenType,
    };
  };
}
