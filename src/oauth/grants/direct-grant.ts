import type { IncomingHttpHeaders } from 'node:http';
import type Provider from 'oidc-provider';
import type { ResourceServer, ResourceServerInstance } from 'oidc-provider';
import { isFormEncoded, parseBasicAuthorization } from '../../credentials/basic-auth.ts';
import { clientSecretExpired, newResourceServer } from '../provider/internals.ts';

// What the grants Tessera issues ahead of oidc-provider's koa stack share (client-credentials-grant.ts,
// refresh-token-grant.ts): which requests qualify, how the client is authenticated, how the
// resource server is resolved. Each is written to say "not mine" (null) for anything oidc-provider
// would answer differently, so that oidc-provider keeps every refusal and every unusual request.

export type OidcClient = NonNullable<Awaited<ReturnType<Provider['Client']['find']>>>;

/** A token response as oidc-provider's buildTokenResponse orders its members. */
export interface DirectTokenResponse {
  access_token: string;
  expires_in: number;
  refresh_token?: string;
  scope?: string;
  token_type: string;
}

/**
 * Issues tokens for a request oidc-provider would grant, or answers null to leave the request to
 * oidc-provider. The form is the one Tessera's rules left (token-request-rules.ts). It may throw an
 * oidc-provider error (answered as oidc-provider answers it) once it has changed something, and
 * only then.
 */
export type DirectGrant = (form: URLSearchParams, headers: IncomingHttpHeaders) => Promise<DirectTokenResponse | null>;

/**
 * The cross-origin headers oidc-provider's token endpoint adds to an answer to a request without
 * an Origin header (a request with one is left to it: Tessera allows no browser origin).
 */
export const CROSS_ORIGIN_HEADERS: readonly string[] = ['Access-Control-Allow-Origin', '*', 'Access-Control-Expose-Headers', 'DPoP-Nonce,WWW-Authenticate', 'Vary', 'Origin'];

/** RFC 6749 §3.3 scope-token syntax, as oidc-provider checks it. */
export const SCOPE_SYNTAX = /^[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*$/u;

/** Characters outside RFC 6749's VSCHAR, which oidc-provider refuses in Basic credentials. */
const NOT_VSCHAR = /[^\x20-\x7E]/;

/**
 * Whether a request needs something a direct grant does not do: a browser origin (CORS), DPoP,
 * client attestation.
 */
export function needsProvider(headers: IncomingHttpHeaders): boolean {
  return headers.origin !== undefined || headers.dpop !== undefined || headers['oauth-client-attestation'] !== undefined || headers['oauth-client-attestation-pop'] !== undefined;
}

/** Whether every parameter is one of `allowed`, non-empty and sent once. */
export function onlyParameters(form: URLSearchParams, allowed: ReadonlySet<string>): boolean {
  let count = 0;
  for (const [name, value] of form) {
    if (!allowed.has(name) || value === '') return false;
    count += 1;
  }
  return count === new Set(form.keys()).size;
}

/** The client id and secret of a request authenticated with client_secret_basic or _post. */
function presentedSecret(form: URLSearchParams, authorization: string | undefined): { clientId: string; secret: string } | null {
  const formId = form.get('client_id') ?? undefined;
  if (authorization === undefined) {
    const secret = form.get('client_secret');
    return formId && secret ? { clientId: formId, secret } : null;
  }
  if (form.has('client_secret')) return null; // two mechanisms: oidc-provider's invalid_request
  const basic = parseBasicAuthorization(authorization, { strict: true });
  if (!basic) return null;
  const { id: clientId, secret } = basic;
  // Form-encoded parts (RFC 6749 §2.3.1) and raw ones that merely look encoded are decoded by
  // oidc-provider (with provider.ts's fallback to the raw secret): left to it, as is any mismatch.
  if (!clientId || !secret || isFormEncoded(clientId) || isFormEncoded(secret) || NOT_VSCHAR.test(clientId) || NOT_VSCHAR.test(secret)) return null;
  if (formId !== undefined && formId !== clientId) return null;
  return { clientId, secret };
}

/** How a direct grant's client may authenticate. */
export interface ClientAuthentication {
  /** A current secret that matches (HTTP Basic or client_secret_post). */
  secret: boolean;
  /** A public client (`none`) naming itself with client_id and presenting nothing else. */
  public: boolean;
}

/**
 * The client of a request that oidc-provider would authenticate in one of the `accepted` ways.
 * Clients whose tokens are bound to a DPoP key or a certificate, every other method, and every
 * failure are left to oidc-provider (null).
 */
export async function authenticatedClient(provider: Provider, form: URLSearchParams, headers: IncomingHttpHeaders, accepted: ClientAuthentication): Promise<OidcClient | null> {
  const secretPresented = headers.authorization !== undefined || form.has('client_secret');
  if (secretPresented ? !accepted.secret : !accepted.public) return null;
  const presented = secretPresented ? presentedSecret(form, headers.authorization) : null;
  const clientId = secretPresented ? presented?.clientId : form.get('client_id');
  if (!clientId) return null;
  const client = await provider.Client.find(clientId);
  if (!client) return null;
  if (client.dpopBoundAccessTokens || client.tlsClientCertificateBoundAccessTokens) return null;
  const method = client.clientAuthMethod;
  if (!presented) return method === 'none' ? client : null;
  if (method !== 'client_secret_basic' && method !== 'client_secret_post') return null;
  if (clientSecretExpired(client)) return null;
  return (await client.compareClientSecret(presented.secret)) ? client : null;
}

/** features.resourceIndicators.getResourceServerInfo, without a request context; throws for an unknown resource. */
export type ResourceServerInfo = (resource: string, client: OidcClient, requested?: Iterable<string>) => ResourceServer;

/** The resource server `identifier` names, as oidc-provider builds one, or null to leave the request to it. */
export function resourceServerFor(provider: Provider, identifier: unknown, client: OidcClient, info: ResourceServerInfo, requested: Iterable<string> = []): ResourceServerInstance | null {
  if (typeof identifier !== 'string' || identifier === '') return null;
  const href = URL.parse(identifier)?.href;
  if (!href || href.includes('#')) return null;
  let resolved: ResourceServer;
  try {
    resolved = info(identifier, client, requested);
  } catch {
    return null;
  }
  return newResourceServer(provider, identifier, resolved);
}
