import type { IncomingMessage } from 'node:http';
import type Provider from 'oidc-provider';
import type { Awaitable } from '../../shared/awaitable.ts';
import type { AccessToken, Client, ClientCredentials, KoaContextWithOIDC, RefreshToken, ResourceServer, ResourceServerInstance } from 'oidc-provider';
// @ts-expect-error -- untyped: oidc-provider's per-instance internals (its router and grant handlers among them).
import readProviderInternals from 'oidc-provider/lib/helpers/weak_cache.js';
// @ts-expect-error -- untyped: how the constructor turns the `jwks` configuration into its keystore.
import initializeKeystore from 'oidc-provider/lib/helpers/initialize_keystore.js';
// @ts-expect-error -- untyped: the token endpoint's DPoP proof check and its replay check.
import validateDpop, { checkDpopReplay } from 'oidc-provider/lib/helpers/validate_dpop.js';

// The only module in src/ that reaches past oidc-provider's documented API (its docs/README.md
// and @types/oidc-provider). Reviewed against the version below; when it changes, re-read each
// function here and the direct grants (oauth/grants/) against the upstream diff. It touches:
//   - Client.prototype.compareClientSecret (replaced) and Client.find (wrapped)
//   - Client#checkClientSecretExpiration and provider.ResourceServer (not in the types)
//   - ReplayDetection.unique (replaced)
//   - RefreshToken, AccessToken, ClientCredentials found, built and saved outside a request
//   - how lib/shared/selective_body.js reads a request (`readable`, `iterator()`)
//   - the wording of lib/actions/token.js's refusal of a grant type the client may not use
//   - the grant handlers registered in the constructor (lib/helpers/weak_cache.js's grantTypeHandlers), one wrapped
//   - the provider's router (lib/helpers/router.js `match`), to learn which methods a path serves
//   - Session.prototype.persist (wrapped), for a session that was never saved
//   - the keystore built from the `jwks` configuration (lib/helpers/initialize_keystore.js), built again on a key rotation
//   - the token endpoint's DPoP proof checks (lib/helpers/validate_dpop.js), for a refresh answered within its reuse grace
// Why each is needed: docs/design/oidc-provider-seam.md.

/** The oidc-provider version this module and the direct grants were last reviewed against. */
export const REVIEWED_OIDC_PROVIDER_VERSION = '9.13.3';

/** Makes every client compare a presented secret with `compare(stored, presented)` (stored secrets are digests). */
export function patchClientSecretComparison(provider: Provider, compare: (stored: string, presented: string) => boolean): void {
  const prototype = provider.Client.prototype as { compareClientSecret(actual: string): Promise<boolean> };
  prototype.compareClientSecret = async function compareClientSecret(this: { clientSecret?: string }, actual: string) {
    return this.clientSecret ? compare(this.clientSecret, actual) : false;
  };
}

/**
 * Client.find answers the client object it built before for the same metadata object `peek`
 * hands out (one WeakMap lookup), instead of hashing the serialised metadata on every request.
 */
export function reuseClientsByMetadata(provider: Provider, peek: (clientId: string) => Awaitable<object | undefined>): void {
  const ClientModel = provider.Client as unknown as { find(id: unknown): Promise<Client | undefined> };
  const findClient = ClientModel.find.bind(ClientModel);
  const built = new WeakMap<object, Client>();
  ClientModel.find = async (id) => {
    const metadata = typeof id === 'string' && id.length > 0 ? await peek(id) : undefined;
    if (!metadata) return findClient(id);
    const known = built.get(metadata);
    if (known) return known;
    const client = await findClient(id);
    if (client) built.set(metadata, client);
    return client;
  };
}

/** A grant type's handler inside oidc-provider's token endpoint (the client is authenticated, the parameters read). */
export type GrantHandler = (ctx: KoaContextWithOIDC) => Promise<void>;

/**
 * Puts `wrap(original)` in place of oidc-provider's own handler of `grantType`, keeping its
 * parameters. registerGrantType, the documented way, can replace a handler but not reach the one
 * oidc-provider registered, which the wrapper calls.
 */
export function wrapGrantHandler(provider: Provider, grantType: string, wrap: (original: GrantHandler) => GrantHandler): void {
  const internals = (readProviderInternals as (provider: Provider) => { grantTypeHandlers?: Map<string, GrantHandler> } | undefined)(provider);
  const original = internals?.grantTypeHandlers?.get(grantType);
  if (!internals?.grantTypeHandlers || !original) throw new Error(`oidc-provider ${REVIEWED_OIDC_PROVIDER_VERSION} registered no handler for ${grantType}: re-read wrapGrantHandler against the installed version`);
  internals.grantTypeHandlers.set(grantType, wrap(original));
}

/** Replaces the replay check of client assertions: `unique` answers whether (iss, jti) is new, and claims it. */
export function replaceAssertionReplayCheck(provider: Provider, unique: (iss: string, jti: string, exp: number) => Promise<boolean>): void {
  (provider.ReplayDetection as unknown as { unique: typeof unique }).unique = unique;
}

/** A DPoP proof at the token endpoint, as oidc-provider checked it. */
export interface TokenEndpointDpopProof {
  /** The RFC 7638 thumbprint of the proof's key: what the tokens are bound to. */
  thumbprint: string;
  jti: string;
  iat: number;
}

/**
 * The request's DPoP proof checked as oidc-provider's grant handlers check it (signature, typ,
 * htm, htu, iat or nonce, with `use_dpop_nonce` when one is needed); undefined without a DPoP
 * header. The result is remembered for the request, so the handler that runs next reuses it.
 */
export function tokenEndpointDpopProof(provider: Provider, ctx: KoaContextWithOIDC): Promise<TokenEndpointDpopProof | undefined> {
  return (validateDpop as (provider: Provider, ctx: KoaContextWithOIDC) => Promise<TokenEndpointDpopProof | undefined>)(provider, ctx);
}

/** Refuses (invalid_grant) a proof whose jti was seen before, and claims it: for a request no grant handler runs for. */
export function claimTokenEndpointDpopProof(provider: Provider, ctx: KoaContextWithOIDC, proof: TokenEndpointDpopProof, clientId: string): Promise<void> {
  return (checkDpopReplay as (provider: Provider, ctx: KoaContextWithOIDC, proof: TokenEndpointDpopProof, clientId: string) => Promise<void>)(provider, ctx, proof, clientId);
}

/** Whether the client's secret has expired (client_secret_expires_at, with the clock tolerance). */
export function clientSecretExpired(client: Client): boolean {
  try {
    (client as unknown as { checkClientSecretExpiration(message: string): void }).checkClientSecretExpiration('expired');
    return false;
  } catch {
    return true;
  }
}

type ResourceServerClass = new (identifier: string, info: ResourceServer) => ResourceServerInstance;

/** A resource server as oidc-provider builds one from getResourceServerInfo's answer. */
export function newResourceServer(provider: Provider, identifier: string, info: ResourceServer): ResourceServerInstance {
  return new (provider as unknown as { ResourceServer: ResourceServerClass }).ResourceServer(identifier, info);
}

/** A refresh token by value, expired ones included (as the refresh_token grant looks one up). */
export function findRefreshToken(provider: Provider, value: string): Promise<RefreshToken | undefined> {
  return provider.RefreshToken.find(value, { ignoreExpiration: true });
}

/** A token saved outside a request, with what a token response says of it. */
export interface IssuedToken {
  value: string;
  expiresIn: number;
  scope: string | undefined;
  tokenType: string;
}

/** A token's constructor members; the types require some that oidc-provider's grants may leave undefined. */
type TokenFields<T extends { client: Client }> = Partial<T> & { client: Client; accountId: string };
type RefreshTokenFields = ConstructorParameters<typeof RefreshToken>[0];
type AccessTokenFields = ConstructorParameters<typeof AccessToken>[0];

/** Builds and saves a refresh token; its value. */
export function issueRefreshToken(provider: Provider, fields: TokenFields<RefreshTokenFields>): Promise<string> {
  return new provider.RefreshToken(fields as RefreshTokenFields).save();
}

/** Builds and saves an access token for `resourceServer` with `scope`. */
export async function issueAccessToken(provider: Provider, fields: TokenFields<AccessTokenFields>, resourceServer: ResourceServerInstance, scope: string): Promise<IssuedToken> {
  const token = new provider.AccessToken(fields as AccessTokenFields);
  token.resourceServer = resourceServer;
  token.scope = scope;
  const value = await token.save();
  return { value, expiresIn: token.expiration, scope: token.scope, tokenType: token.tokenType };
}

/** Builds and saves a client_credentials token asked for with `requestedScope`, issued for `resourceServer` with `scope`. */
export async function issueClientCredentials(provider: Provider, client: Client, requestedScope: string | undefined, resourceServer: ResourceServerInstance, scope: string | undefined): Promise<IssuedToken> {
  const token: ClientCredentials = new provider.ClientCredentials({ client, scope: requestedScope });
  token.resourceServer = resourceServer;
  token.scope = scope;
  const value = await token.save();
  return { value, expiresIn: token.expiration, scope: token.scope, tokenType: token.tokenType };
}

/** Makes an already-read request readable again with `body`, for oidc-provider's body parser. */
export function replayRequestBody(req: IncomingMessage, body: Buffer): void {
  Object.defineProperty(req, 'readable', { value: true, configurable: true });
  // The parser reads with `for await (… of req.iterator())`, which takes a plain iterable too.
  (req as unknown as { iterator: () => Iterable<Buffer> }).iterator = () => [body];
  req.headers['content-length'] = String(body.length);
}

/**
 * RFC 6749 §5.2: a client using a grant type it may not use is `unauthorized_client`; oidc-provider
 * (lib/actions/token.js, allowedGrantTypeCheck) answers `invalid_request`. Corrects the rendered
 * answer in place; any other body is left as it is.
 */
export function correctDisallowedGrantError(body: unknown): void {
  const answer = body as { error?: unknown; error_description?: unknown } | null;
  if (answer?.error === 'invalid_request' && answer.error_description === 'requested grant type is not allowed for this client') answer.error = 'unauthorized_client';
}

/** The methods oidc-provider's router would answer, in the order a client reads them in `Allow`. */
const ROUTED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'] as const;

interface ProviderRouter {
  match(method: string, path: string): unknown;
}

/**
 * The methods oidc-provider serves at `path` (none for a path it does not route), read from its
 * own router (lib/helpers/router.js), so a route enabled or disabled in the configuration is
 * reflected without a list of Tessera's to keep in step. OPTIONS is left out: oidc-provider
 * answers it only as a CORS preflight (lib/shared/cors.js), see `answersPreflight`.
 */
export function providerMethodsAt(provider: Provider, path: string): string[] {
  return routedMethods(provider, path).filter((method) => method !== 'OPTIONS');
}

/** Whether oidc-provider answers a CORS preflight (OPTIONS with Access-Control-Request-Method) at `path`. */
export function answersPreflight(provider: Provider, path: string): boolean {
  return routedMethods(provider, path).includes('OPTIONS');
}

function routedMethods(provider: Provider, path: string): string[] {
  const router = (readProviderInternals as (provider: Provider) => { router?: ProviderRouter } | undefined)(provider)?.router;
  if (!router) throw new Error('oidc-provider internals moved: no router (re-read src/oauth/provider/internals.ts)');
  return ROUTED_METHODS.filter((method) => router.match(method, path) !== undefined);
}

/**
 * A session that was never saved is not persisted at the end of a request: oidc-provider's
 * ensureSessionSave (lib/helpers/initialize_app.js) calls `persist()` on any touched session, and
 * `persist()` throws for one that was never saved. That happens when an error page re-renders the
 * device form for a request without a session (POST /device with no session cookie: its xsrf
 * secret is set after the session middleware has finished), and the client got a 500 instead of
 * the form's 400. Such a session was never handed to the browser: there is nothing to persist.
 */
export function skipPersistingUnsavedSessions(provider: Provider): void {
  const prototype = provider.Session.prototype as unknown as { exp?: unknown; persist(): Promise<unknown> };
  const persist = prototype.persist;
  prototype.persist = async function persistIfSaved(this: { exp?: unknown }) {
    return typeof this.exp === 'number' ? persist.call(this) : undefined;
  };
}

/**
 * Replaces the keys the provider signs with and publishes at jwks_uri, as its constructor builds
 * them from the `jwks` configuration (lib/helpers/initialize_keystore.js): the configuration is
 * read only once, and a rotation must reach a running node without a restart.
 */
export function replaceSigningKeys(provider: Provider, jwks: { keys: object[] }): void {
  (initializeKeystore as (this: Provider, jwks: unknown) => void).call(provider, jwks);
}
