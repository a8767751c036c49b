import type { IncomingHttpHeaders } from 'node:http';
import type Provider from 'oidc-provider';
import type { ResourceServer, ResourceServerInstance } from 'oidc-provider';

type Client = NonNullable<Awaited<ReturnType<Provider['Client']['find']>>>;

/** A token response as oidc-provider's buildTokenResponse orders it. */
export interface ClientCredentialsTokenResponse {
  access_token: string;
  expires_in: number;
  scope?: string;
  token_type: string;
}

/**
 * Issues a client_credentials token for a request oidc-provider would grant, or answers null to
 * leave the request to oidc-provider. The form is the one Tessera's check left (scopes already
 * narrowed to the client's, `read` by default).
 */
export type ClientCredentialsGrant = (form: URLSearchParams, headers: IncomingHttpHeaders) => Promise<ClientCredentialsTokenResponse | null>;

export interface ClientCredentialsGrantDependencies {
  provider: Provider;
  /** The scopes oidc-provider is configured with (its `scopes`). */
  knownScopes: ReadonlySet<string>;
  /** features.resourceIndicators.defaultResource, without a request context. */
  defaultResource(client: Client): string | undefined;
  /** features.resourceIndicators.getResourceServerInfo, without a request context; throws for an unknown resource. */
  resourceServerInfo(resource: string, client: Client): ResourceServer;
}

/**
 * The cross-origin headers oidc-provider's token endpoint adds to an answer to a request without
 * an Origin header (a request with one is left to it: Tessera allows no browser origin).
 */
export const CROSS_ORIGIN_HEADERS: readonly string[] = ['Access-Control-Allow-Origin', '*', 'Access-Control-Expose-Headers', 'WWW-Authenticate', 'Vary', 'Origin'];

/** The only parameters a request may carry to be issued here; anything else goes to oidc-provider. */
const PARAMETERS: ReadonlySet<string> = new Set(['grant_type', 'scope', 'client_id', 'client_secret']);

/** RFC 6749 §3.3 scope-token syntax, as oidc-provider checks it. */
const SCOPE_SYNTAX = /^[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*$/u;

/** Characters outside RFC 6749's VSCHAR, which oidc-provider refuses in Basic credentials. */
const NOT_VSCHAR = /[^\x20-\x7E]/;

/** A Basic header exactly as oidc-provider parses one: one space, canonical base64. */
const BASIC = /^basic ([A-Za-z0-9+/]+={0,2})$/i;

/** The client id and secret of a request authenticated with client_secret_basic or _post. */
function presentedSecret(form: URLSearchParams, authorization: string | undefined): { clientId: string; secret: string } | null {
  const formId = form.get('client_id') ?? undefined;
  if (authorization === undefined) {
    const secret = form.get('client_secret');
    return formId && secret ? { clientId: formId, secret } : null;
  }
  if (form.has('client_secret')) return null; // two mechanisms: oidc-provider's invalid_request
  const encoded = BASIC.exec(authorization)?.[1];
  if (!encoded) return null;
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.toString('base64') !== encoded) return null;
  const decoded = bytes.toString('utf8');
  const colon = decoded.indexOf(':');
  const clientId = decoded.slice(0, colon);
  const secret = decoded.slice(colon + 1);
  // Form-encoded parts (RFC 6749 §2.3.1) and raw ones that merely look encoded are decoded by
  // oidc-provider (with provider.ts's fallback to the raw secret): left to it, as is any mismatch.
  if (colon <= 0 || !secret || /[%+]/.test(decoded) || NOT_VSCHAR.test(decoded)) return null;
  if (formId !== undefined && formId !== clientId) return null;
  return { clientId, secret };
}

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
export function createClientCredentialsGrant(deps: ClientCredentialsGrantDependencies): ClientCredentialsGrant {
  const { provider, knownScopes } = deps;

  return async (form, headers) => {
    if (form.get('grant_type') !== 'client_credentials') return null;
    if (headers.origin !== undefined || headers.dpop !== undefined || headers['oauth-client-attestation'] !== undefined || headers['oauth-client-attestation-pop'] !== undefined) return null;
    let count = 0;
    for (const [name, value] of form) {
      if (!PARAMETERS.has(name) || value === '') return null;
      count += 1;
    }
    if (count !== new Set(form.keys()).size) return null; // a repeated parameter

    const presented = presentedSecret(form, headers.authorization);
    if (!presented) return null;
    const client = await provider.Client.find(presented.clientId);
    if (!client) return null;
    const method = client.clientAuthMethod;
    if (method !== 'client_secret_basic' && method !== 'client_secret_post') return null;
    const flags = client as unknown as { dpopBoundAccessTokens?: boolean; tlsClientCertificateBoundAccessTokens?: boolean };
    if (flags.dpopBoundAccessTokens || flags.tlsClientCertificateBoundAccessTokens) return null;
    if (!client.grantTypeAllowed('client_credentials')) return null;
    try {
      (client as unknown as { checkClientSecretExpiration(message: string): void }).checkClientSecretExpiration('expired');
    } catch {
      return null;
    }
    if (!(await client.compareClientSecret(presented.secret))) return null;

    const scope = form.get('scope') ?? undefined;
    if (scope !== undefined && !SCOPE_SYNTAX.test(scope)) return null;
    const requested = scope === undefined ? [] : [...new Set(scope.split(' '))];
    if (client.scope !== undefined) {
      const allowed = new Set(client.scope.split(' '));
      if (requested.some((name) => knownScopes.has(name) && !allowed.has(name))) return null;
    }

    const resourceServer = forResource(deps, client);
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

/** The client's default resource server, as oidc-provider resolves one, or null to leave it the request. */
function forResource(deps: ClientCredentialsGrantDependencies, client: Client): ResourceServerInstance | null {
  const identifier = deps.defaultResource(client);
  if (typeof identifier !== 'string' || identifier === '') return null;
  const href = URL.parse(identifier)?.href;
  if (!href || href.includes('#')) return null;
  let info: ResourceServer;
  try {
    info = deps.resourceServerInfo(identifier, client);
  } catch {
    return null;
  }
  const ResourceServerClass = (deps.provider as unknown as { ResourceServer: new (identifier: string, info: ResourceServer) => ResourceServerInstance }).ResourceServer;
  return new ResourceServerClass(identifier, info);
}
