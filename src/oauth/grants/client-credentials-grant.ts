// client_credentials issued ahead of oidc-provider's koa stack: the token endpoint's busiest request.
// Mirrors lib/actions/grants/client_credentials.js @ oidc-provider 9.13.3 (internals.ts). Deviates:
// it takes only requests that need a secret, scopes and the client's default resource (no Origin,
// DPoP, mTLS, resource, authorization_details) and leaves every other request, every refusal
// included, to oidc-provider. Why and how: docs/design/oidc-provider-seam.md.
import type Provider from 'oidc-provider';
import { issueClientCredentials } from '../provider/internals.ts';
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

    const resourceServer = resourceServerFor(provider, deps.defaultResource(client), client, deps.resourceServerInfo, requested);
    if (!resourceServer) return null;
    const granted = requested.filter((name) => resourceServer.scopes.has(name)).join(' ') || undefined;
    const token = await issueClientCredentials(provider, client, requested.join(' ') || undefined, resourceServer, granted);
    return token.scope
      ? { access_token: token.value, expires_in: token.expiresIn, scope: token.scope, token_type: token.tokenType }
      : { access_token: token.value, expires_in: token.expiresIn, token_type: token.tokenType };
  };
}
