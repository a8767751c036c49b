// refresh_token issued ahead of oidc-provider's koa stack: every command-line login refreshes this way.
// Mirrors lib/actions/grants/refresh_token.js @ oidc-provider 9.13.3 step for step (internals.ts).
// Deviates: only public clients, with rotation on, and only tokens bound to no key, certificate or
// authorization details, without `openid`, for one resource; every other request, every refusal
// included, goes to oidc-provider (null, before anything changes). Once the token is consumed this
// can only throw. With the reuse grace, the rotation is claimed first and its answer kept (a token
// rotated within the grace gets it again: refresh-reuse-grace.ts). Why and how:
// docs/design/oidc-provider-seam.md.
import type Provider from 'oidc-provider';
import { OAuthError } from '../../shared/errors.ts';
import { RotationInFlight, type RefreshReuseGrace, type TokenAnswerBody } from './refresh-reuse-grace.ts';
import { findRefreshToken, issueAccessToken, issueRefreshToken } from '../provider/internals.ts';
import { authenticatedClient, CROSS_ORIGIN_HEADERS, needsProvider, onlyParameters, resourceServerFor, SCOPE_SYNTAX, type DirectGrant, type DirectTokenResponse, type OidcClient, type ResourceServerInfo } from './direct-grant.ts';

export interface RefreshTokenGrantDependencies {
  provider: Provider;
  /** The configured `findAccount` (it reads no request context): undefined for an account that may no longer sign in. */
  findAccount(accountId: string): Promise<{ accountId: string } | undefined>;
  /** Whether the configuration rotates every refresh token (`rotateRefreshToken: true`); otherwise nothing is issued here. */
  rotates: boolean;
  resourceServerInfo: ResourceServerInfo;
  /** The refresh-token reuse grace, when one is configured. */
  reuseGrace?: RefreshReuseGrace | undefined;
}

/** The only parameters a request may carry to be issued here; anything else goes to oidc-provider. */
const PARAMETERS: ReadonlySet<string> = new Set(['grant_type', 'refresh_token', 'scope', 'client_id']);

const GTY = 'refresh_token';

const CROSS_ORIGIN: Record<string, string> = Object.fromEntries(CROSS_ORIGIN_HEADERS.flatMap((name, i) => (i % 2 ? [] : [[name, CROSS_ORIGIN_HEADERS[i + 1]!]])));

export function createRefreshTokenGrant(deps: RefreshTokenGrantDependencies): DirectGrant {
  const { provider } = deps;

  /** Whether the request is this grant's: the checks oidc-provider makes before it consumes the token, and a resource it would accept afterwards (null otherwise). */
  async function redeemable(value: string, client: OidcClient, scope: string | undefined) {
    const token = await findRefreshToken(provider, value);
    if (!token || token.clientId !== client.clientId || token.isExpired || typeof token.grantId !== 'string') return null;
    if (token.consumed) return 'consumed';
    if (token['x5t#S256'] || token.jkt || token.attestationJkt || token.rar !== undefined) return null;
    const grant = await provider.Grant.find(token.grantId, { ignoreExpiration: true });
    if (!grant || grant.isExpired || grant.clientId !== client.clientId) return null;
    const requested = scope === undefined ? token.scopes : new Set(scope.split(' '));
    if (scope !== undefined && [...requested].some((name) => !token.scopes.has(name))) return null;
    if (requested.has('openid')) return null;
    // The token's granted resource (useGrantedResource), a single one.
    const resource = token.resource;
    if (typeof resource !== 'string' || !token.resourceIndicators.has(resource)) return null;
    const resourceServer = resourceServerFor(provider, resource, client, deps.resourceServerInfo, requested);
    if (!resourceServer) return null;
    const account = await deps.findAccount(token.accountId);
    if (!account || typeof account.accountId !== 'string' || account.accountId === '' || token.accountId !== grant.accountId) return null;
    return { token, grant, requested, resource, resourceServer, account };
  }

  /** The reuse grace's answer; a rotation of the same token still in flight after the wait is 503. */
  async function withinGrace(grace: RefreshReuseGrace, value: string, clientId: string, rotate?: () => Promise<TokenAnswerBody>): Promise<DirectTokenResponse | null> {
    try {
      return (await grace.answer(value, clientId, rotate)) as DirectTokenResponse | null;
    } catch (error) {
      if (!(error instanceof RotationInFlight)) throw error;
      throw new OAuthError(503, 'temporarily_unavailable', error.message, { headers: { 'Retry-After': '1', ...CROSS_ORIGIN } });
    }
  }

  /** Consumes the token and issues its successor and an access token: from here on the request is this grant's to answer. */
  async function rotate(found: NonNullable<Exclude<Awaited<ReturnType<typeof redeemable>>, 'consumed'>>, client: OidcClient): Promise<DirectTokenResponse> {
    const { token, grant, requested, resource, resourceServer, account } = found;
    await token.consume();
    const gty = token.gty && !token.gty.endsWith(GTY) ? `${token.gty} ${GTY}` : token.gty;
    const refreshToken = await issueRefreshToken(provider, {
      accountId: token.accountId,
      acr: token.acr,
      amr: token.amr,
      authTime: token.authTime,
      claims: token.claims,
      client,
      expiresWithSession: token.expiresWithSession,
      iiat: token.iiat,
      grantId: token.grantId,
      gty,
      nonce: token.nonce,
      resource: token.resource,
      rotations: typeof token.rotations === 'number' ? token.rotations + 1 : 1,
      scope: token.scope,
      sessionUid: token.sessionUid,
      sid: token.sid,
    });

    const scopeHere = grant.getResourceScopeFiltered(resource, [...requested].filter((name) => resourceServer.scopes.has(name)));
    const accessToken = await issueAccessToken(
      provider,
      { accountId: account.accountId, client, expiresWithSession: token.expiresWithSession, grantId: token.grantId, gty, sessionUid: token.sessionUid, sid: token.sid },
      resourceServer,
      scopeHere,
    );
    const answeredScope = token.scope ? accessToken.scope : accessToken.scope || undefined;
    return {
      access_token: accessToken.value,
      expires_in: accessToken.expiresIn,
      refresh_token: refreshToken,
      ...(answeredScope !== undefined ? { scope: answeredScope } : {}),
      token_type: accessToken.tokenType,
    };
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
    // A rotated token: its rotation's answer within the grace; otherwise oidc-provider's (reuse).
    if (found === 'consumed') return deps.reuseGrace ? withinGrace(deps.reuseGrace, value, client.clientId) : null;
    if (!found) return null;
    const issue = () => rotate(found, client);
    return deps.reuseGrace ? withinGrace(deps.reuseGrace, value, client.clientId, async () => ({ ...(await issue()) })) : issue();
  };
}
