import type Provider from 'oidc-provider';
import { authenticatedClient, needsProvider, onlyParameters, resourceServerFor, SCOPE_SYNTAX, type DirectGrant, type OidcClient, type ResourceServerInfo } from './direct-grant.ts';

export interface ClientCredentialsGrantDependencies {
  provider: Provider;
  /** The scopes oidc-provider is configured with (its `scopes`). */
  knownScopes: ReadonlySet<string>;
  /** features.resourceIndicators.defaultResource, without a request context. */
  defaultResource(client: OidcClient): string | undefined;
  resourceServerInfo: ResourceServerInfo;
}

/** The only parameters a request may carry to be issued here; anything else goes to oidc-provider. */
const PARAMETERS: ReadonlySet<string> = new Set(['grant_type', 'scope', 'client_id', 'client_secret']);

/**
 * client_credentials on the token endpoint without oidc-provider's koa stack: a client (a service,
 * a worker) fetching a token is the token endpoint's busiest request, and koa's context, router and
 * middleware chain cost more than the grant itself. The token is oidc-provider's own
 * ClientCredentials model, with the resource server, scope, lifetime and format oidc-provider would
 * give it, saved through the same adapter and answered in the same shape.
 *
 * Only a request that oidc-provider would grant, and that needs nothing more than a secret,
 * scopes and the client's default resource, is issued here: HTTP Basic or client_secret_post,
 * the four parameters above at most once each, no Origin, DPoP, mTLS, resource or authorization_details,
 * a client allowed the grant with a current secret that matches. Everything else, every refusal
 * included, is answered by oidc-provider exactly as before (this returns null).
 */
export function createClientCredentialsGrant(deps: ClientCredentialsGrantDependencies): DirectGrant {
  const { provider, knownScopes } = deps;

  return async (form, headers) => {
    if (form.get('grant_type') !== 'client_credentials') return null;
    if (needsProvider(headers) || !onlyParameters(form, PARAMETERS)) return null;
    const client = await authenticatedClient(provider, form, headers, { secret: true, public: false });
    if (!client || !client.grantTypeAllowed('client_credentials')) return null;

    const scope = form.get('scope') ?? undefined;
    if (scope !== undefined && !SCOPE_SYNTAX.test(scope)) return null;
    const requested = scope === undefined ? [] : [...new Set(scope.split(' '))];
    if (client.scope !== undefined) {
      const allowed = new Set(client.scope.split(' '));
      if (requested.some((name) => knownScopes.has(name) && !allowed.has(name))) return null;
    }

    const resourceServer = resourceServerFor(provider, deps.defaultResource(client), client, deps.resourceServerInfo);
    if (!resourceServer) return null;
    const token = new provider.ClientCredentials({ client, scope: requested.join(' ') || undefined });
    token.resourceServer = resourceServer;
    token.scope = requested.filter((name) => resourceServer.scopes.has(name)).join(' ') || undefined;
    const accessToken = await token.save();
    const expiresIn = (token as unknown as { expiration: number }).expiration;
    return token.scope
      ? { access_token: accessToken, expires_in: expiresIn, scope: token.scope, token_type: token.tokenType }
      : { access_token: accessToken, expires_in: expiresIn, token_type: token.tokenType };
  };
}
