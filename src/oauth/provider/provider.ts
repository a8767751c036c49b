// oidc-provider configured for Tessera: its routes, models on Tessera's stores, clients from
// PostgreSQL, and the direct grants it may be spared. What reaches past its API is in internals.ts.
import { AsyncLocalStorage } from 'node:async_hooks';
import Provider, { errors, type Adapter, type Configuration, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { Logger } from 'pino';
import type { UserCache } from '../../accounts/user-cache.ts';
import type { Config } from '../../config/schema.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import type { Awaitable } from '../../shared/awaitable.ts';
import { formDecode, isFormEncoded, parseBasicAuthorization, type BasicCredentials } from '../../credentials/basic-auth.ts';
import { CLIENT_ASSERTION_ALGORITHMS } from '../../clients/client-assertion.ts';
import { claimClientAssertion } from '../adapter/assertion-replay.ts';
import { createClientCredentialsGrant } from '../grants/client-credentials-grant.ts';
import type { DirectGrant } from '../grants/direct-grant.ts';
import { createRefreshTokenGrant } from '../grants/refresh-token-grant.ts';
import { createRefreshReuseGrace, RotationInFlight, type RefreshReuseGrace, type TokenAnswerBody } from '../grants/refresh-reuse-grace.ts';
import { secretMatches } from '../../clients/client-secret.ts';
import { clientScopesOf } from '../../clients/oidc-client-metadata.ts';
import { successSource, userCodeConfirmSource, userCodeInputSource } from '../device/device-pages.ts';
import { createDevicePollPolicy, type DevicePollPolicy } from '../device/device-poll-policy.ts';
import { renderOAuthErrorPage } from './error-page.ts';
import type { JwtRevocations } from '../adapter/jwt-revocations.ts';
import { createJwtAccessTokenRevocation, JWT_GRANT_CLAIM } from './jwt-access-token-revocation.ts';
import { claimTokenEndpointDpopProof, correctDisallowedGrantError, patchClientSecretComparison, replaceAssertionReplayCheck, replaceSigningKeys, reuseClientsByMetadata, skipPersistingUnsavedSessions, tokenEndpointDpopProof, wrapGrantHandler } from './internals.ts';
import type { PublishedSigningKeys } from '../published-signing-keys.ts';
import { recordDeviceCancelled, recordJwtRevocation, recordReuseDetected, recordRevocation, revokeGrantPolicy } from './oauth-audit.ts';
import type { AuditLog } from '../../audit/audit-log.ts';
import { createStoreOutageSeam } from './store-outage.ts';
import { isPromise } from '../../shared/awaitable.ts';
import { anyCovers, readScope } from '../../shared/path-scopes.ts';
import { shapeForProfile } from './token-profiles.ts';
import { DPOP_ALGORITHMS } from '../dpop-algorithms.ts';

/** The routes oidc-provider serves (everything else is express). */
export const OIDC_ROUTES = {
  authorization: '/oauth/authorize',
  token: '/oauth/token',
  device_authorization: '/oauth/device/code',
  code_verification: '/device',
  revocation: '/oauth/revoke',
  introspection: '/oauth/introspect',
  jwks: '/.well-known/jwks.json',
  end_session: '/oauth/logout',
  userinfo: '/oauth/userinfo',
} as const;

export { JWT_GRANT_CLAIM };

/** Protocol scopes; the catalog's API scopes are granted per resource server. */
const PROTOCOL_SCOPES = ['openid', 'offline_access'];

export interface ClientMetadataSource {
  findOidcMetadata(clientId: string): Promise<Record<string, unknown> | undefined>;
  /**
   * The same, shared and unchanging while it is current (a cache's entry): oidc-provider's client
   * object is then built once per version of the metadata rather than on every request.
   */
  peekOidcMetadata?(clientId: string): Awaitable<Readonly<Record<string, unknown>> | undefined>;
}

export interface ProviderDependencies {
  config: Config;
  logger: Logger;
  /** Users by id (a cache in front of the accounts service: user-cache.ts). */
  accounts: Pick<UserCache, 'peekUser'>;
  clients: ClientMetadataSource;
  adapterFactory: (modelName: string) => Adapter;
  /** The keys it signs with and publishes; a rotation replaces them while it runs. */
  signingKeys: PublishedSigningKeys;
  jwtRevocations: Pick<JwtRevocations, 'revoke'>;
  cookieKeys: string[];
  ephemeral: EphemeralStore;
  /** Where reuse detections and revocations are recorded (oauth-audit.ts). */
  audit: Pick<AuditLog, 'recordInBackground'>;
  /**
   * 32 bytes keying the DPoP nonces the token endpoint hands out (RFC 9449 §8): the same on every
   * node, so a nonce one node gave is good at all of them (derived from the key-encryption secret).
   */
  dpopNonceSecret: Buffer;
  /** Milliseconds since the epoch, for the refresh-token reuse grace. Default Date.now. */
  clock?: () => number;
}

/** Tessera's own client metadata, kept by oidc-provider beside the standard members. */
interface TesseraClient {
  clientId: string;
  scope?: string;
  clientSecret?: string;
  tessera_kind?: string;
  tessera_default_resource?: string;
  tessera_access_token_ttl?: number;
  tessera_may_introspect?: boolean;
  tessera_path_scopes?: string;
}

/**
 * The raw secret of an HTTP Basic header, for the comparison below: RFC 6749 §2.3.1 says the
 * client id and secret are form-urlencoded before Basic encoding, and oidc-provider decodes them;
 * clients that send them raw are accepted too.
 */
const rawBasicSecret = new AsyncLocalStorage<string | undefined>();

/** Re-encodes a Basic header whose parts are not valid form-encoding, so the raw value survives decoding. */
function normaliseBasicHeader(credentials: BasicCredentials): string {
  const parts = [credentials.id, credentials.secret].map((part) => (formDecode(part) === undefined ? encodeURIComponent(part) : part));
  return `Basic ${Buffer.from(parts.join(':')).toString('base64')}`;
}

export interface TesseraProvider {
  provider: Provider;
  devicePolls: DevicePollPolicy;
  /** client_credentials and refresh_token issued ahead of oidc-provider's koa stack (none when oauth.directGrants is off). */
  directGrants: DirectGrant[];
}

/** The revocation endpoint's policy: a client may revoke its own tokens; a resource server any it is shown. */
const mayRevoke = (caller: TesseraClient, tokenClientId: unknown) => tokenClientId === caller.clientId || caller.tessera_kind === 'resource_server';

/** oidc-provider's answer to a JWT shown to its revocation endpoint (reject_structured_tokens.js). */
const refusedAsStructured = (body: unknown) => (body as { error?: unknown } | null)?.error === 'unsupported_token_type';

export function createOidcProvider(deps: ProviderDependencies): TesseraProvider {
  const { config, accounts, clients } = deps;
  const catalog = Object.keys(config.scopes);
  const pathScoped = new Set(config.pathScopes);
  const secureCookies = new URL(config.issuer).protocol === 'https:';

  /** The client's API scopes: catalog names, and path scopes ("storage.read:/atlas") of path-scoped names. */
  const allowedApiScopes = (client: TesseraClient): string[] => {
    const listed = clientScopesOf(client);
    return listed.filter((scope) => catalog.includes(scope) || readScope(scope, pathScoped).kind === 'path');
  };

  /**
   * The scopes a resource server may put in this token: the client's API scopes, and each requested
   * path scope one of them covers (a client holding storage.read:/atlas may ask for
   * storage.read:/atlas/data). oidc-provider keeps of the requested scopes only those listed here.
   */
  const resourceScopes = (client: TesseraClient, requested: Iterable<string>): string[] => {
    const allowed = allowedApiScopes(client);
    const narrowed = [...requested].filter((scope) => !allowed.includes(scope) && readScope(scope, pathScoped).kind === 'path' && anyCovers(allowed, scope, pathScoped));
    return [...allowed, ...narrowed];
  };

  // The resource indicators (RFC 8707) oidc-provider resolves, here to be shared with the
  // client_credentials grant issued outside it (client-credentials-grant.ts).
  const defaultResource = (client: object): string => (client as TesseraClient).tessera_default_resource ?? config.oauth.defaultResource;
  const resourceServerInfo = (resource: string, client: object, requested: Iterable<string> = []): ResourceServer => {
    const server = config.oauth.resources[resource];
    if (!server) throw new errors.InvalidTarget(`unknown resource ${resource}`);
    const tesseraClient = client as TesseraClient;
    return {
      scope: resourceScopes(tesseraClient, requested).join(' '),
      audience: resource,
      accessTokenTTL: tesseraClient.tessera_access_token_ttl ?? config.oauth.accessTokenTtlSeconds,
      accessTokenFormat: server.format,
      ...(server.format === 'jwt' ? { jwt: { sign: { alg: config.oauth.signingAlgorithm } } } : {}),
    } as ResourceServer;
  };

  /** An account that may still sign in (not disabled), as oidc-provider wants one; it needs no request context. */
  const findAccount = async (sub: string) => {
    const user = await accounts.peekUser(sub);
    if (!user || user.disabled) return undefined;
    return {
      accountId: user.id,
      async claims() {
        return { sub: user.id, preferred_username: user.username };
      },
    };
  };

  const clientAdapter: Adapter = {
    async find(id: string) {
      return clients.findOidcMetadata(id) as never;
    },
    async upsert() {
      throw new Error('clients are managed with `tessera client`, not through oidc-provider');
    },
    async findByUid() {
      return undefined;
    },
    async findByUserCode() {
      return undefined;
    },
    async consume() {},
    async destroy() {},
    async revokeByGrantId() {},
  };

  // A store outage is answered 503 temporarily_unavailable, not server_error (store-outage.ts).
  const outages = createStoreOutageSeam(deps.logger);

  const configuration: Configuration = {
    adapter: (name: string) => outages.guardAdapter(name === 'Client' ? clientAdapter : deps.adapterFactory(name)) as never,
    clients: [],
    jwks: deps.signingKeys.privateJwks() as never,
    cookies: {
      keys: deps.cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: 'lax', secure: secureCookies },
      short: { signed: true, httpOnly: true, sameSite: 'lax', secure: secureCookies },
    },
    // Every scope is known to oidc-provider, so a client's `scope` metadata may list API scopes and
    // a user flow asking for one its client may not have is invalid_scope.
    scopes: [...PROTOCOL_SCOPES, ...catalog],
    claims: { openid: ['sub', 'preferred_username'] },
    extraClientMetadata: { properties: ['tessera_kind', 'tessera_default_resource', 'tessera_access_token_ttl', 'tessera_may_introspect', 'tessera_path_scopes', 'tessera_token_exchange'] },
    routes: OIDC_ROUTES,
    responseTypes: ['code'],
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],

    findAccount: outages.guard((_ctx: unknown, sub: string) => findAccount(sub)),
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: {
        enabled: true,
        // A client may revoke its own tokens; a resource server may revoke any it is shown.
        allowedPolicy: async (_ctx, client, token) => mayRevoke(client as unknown as TesseraClient, token.clientId),
      },
      // Enabled for the discovery document only: requests to the endpoint never reach
      // oidc-provider; src/routes/oauth/introspection-endpoint.ts answers them ahead of express.
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client) => (client as unknown as TesseraClient).tessera_may_introspect === true,
      },
      // Tessera answers userinfo itself: oidc-provider's refuses tokens issued for a resource server,
      // and every token Tessera issues is (src/routes/oauth/userinfo-endpoint.ts).
      userinfo: { enabled: false },
      // Sender-constrained tokens (RFC 9449) for every grant: a token request with a proof gets
      // tokens bound to its key (a public client's refresh token too, §5). Forward-auth,
      // /api/v1/me, userinfo (introspection/sender-constraint.ts) and @tessera/verifier check
      // proofs (docs/dpop.md). Nonces are offered always, required when configured; proof replay is
      // refused through ReplayDetection (internals.ts makes that one SET NX).
      dPoP: { enabled: true, nonceSecret: deps.dpopNonceSecret, requireNonce: () => config.oauth.dpop.requireNonce, allowReplay: false },
      pushedAuthorizationRequests: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        userCodeInputSource: userCodeInputSource as never,
        userCodeConfirmSource: userCodeConfirmSource as never,
        successSource: successSource as never,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, client) => defaultResource(client),
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => resourceServerInfo(resource, client, requestedScopes(ctx, resource)),
      },
    },
    pkce: {
      // Web apps must use PKCE (S256 is the only method oidc-provider 9 accepts).
      required: (_ctx, client) => (client as unknown as TesseraClient).tessera_kind === 'web',
    },
    // A JWT access token is not stored, so nothing could revoke it; naming its grant lets
    // introspection answer it inactive once the grant is gone (refresh token revoked, reuse
    // detected, user or client ended). The grant id is an opaque reference, not a credential.
    extraTokenClaims: (_ctx, token) => {
      const grantId = (token as { grantId?: string }).grantId;
      const format = (token as { resourceServer?: { accessTokenFormat?: string } }).resourceServer?.accessTokenFormat;
      return grantId && format === 'jwt' ? { [JWT_GRANT_CLAIM]: grantId } : undefined;
    },
    // A resource server's profile (oauth.resources.<aud>.profile) shapes its JWTs' claims (token-profiles.ts).
    formats: {
      customizers: {
        jwt: (_ctx, token, jwt) => {
          const audience = (token as { resourceServer?: { audience?: string } }).resourceServer?.audience;
          const profile = audience === undefined ? undefined : config.oauth.resources[audience]?.profile;
          if (profile && profile !== 'rfc9068') jwt.payload = shapeForProfile(profile, jwt.payload as Record<string, unknown>) as typeof jwt.payload;
        },
      },
    },
    rotateRefreshToken: true,
    // oidc-provider's own answer, which also notes whose a reused code was (for the audit log).
    revokeGrantPolicy,
    issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    ttl: {
      AccessToken: (_ctx, token, client) =>
        token.resourceServer?.accessTokenTTL ?? (client as unknown as TesseraClient).tessera_access_token_ttl ?? config.oauth.accessTokenTtlSeconds,
      ClientCredentials: (_ctx, token, client) =>
        token.resourceServer?.accessTokenTTL ?? (client as unknown as TesseraClient).tessera_access_token_ttl ?? config.oauth.accessTokenTtlSeconds,
      AuthorizationCode: 60,
      DeviceCode: config.oauth.deviceCodeTtlSeconds,
      RefreshToken: config.oauth.refreshTokenTtlSeconds,
      Grant: config.oauth.refreshTokenTtlSeconds,
      IdToken: 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
    },
    clientBasedCORS: () => false,
    renderError: renderOAuthErrorPage as never,
    enabledJWA: {
      authorizationSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'],
      dPoPSigningAlgValues: [...DPOP_ALGORITHMS],
      // Every key type a client may register (config/schema.ts clientJwksSchema) can sign its
      // private_key_jwt assertions, here as at the introspection endpoint. No HMAC: clients have
      // no shared secret for it.
      clientAuthSigningAlgValues: CLIENT_ASSERTION_ALGORITHMS,
    },
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.http.trustProxy !== false;
  // A rotation by any node reaches this one's keystore while it runs (published-signing-keys.ts).
  deps.signingKeys.onChange((jwks) => replaceSigningKeys(provider, jwks));

  // Client secrets are stored as SHA-256 digests: digest what the client presents, then compare
  // in constant time (no argon2 here: generated secrets carry 256 bits).
  patchClientSecretComparison(provider, (stored, presented) => {
    const raw = rawBasicSecret.getStore();
    return secretMatches(stored, presented) || (raw !== undefined && raw !== presented && secretMatches(stored, raw));
  });

  // With a source that hands out the same metadata object while it is current, that object
  // identifies the client's version: oidc-provider's client object is reused for it.
  const peek = clients.peekOidcMetadata?.bind(clients);
  if (peek) {
    // What memory answers stays synchronous; only a lookup in the store can meet an outage.
    reuseClientsByMetadata(provider, (clientId) => {
      const metadata = peek(clientId);
      return isPromise(metadata) ? outages.guardPromise(metadata) : metadata;
    });
  }

  // oidc-provider checks client assertions for replay with a find, then a save: two concurrent
  // uses could both pass. One SET NX decides instead, on the record the introspection endpoint
  // shares (assertion-replay.ts).
  replaceAssertionReplayCheck(
    provider,
    outages.guard((iss: string, jti: string, exp: number) => claimClientAssertion(deps.ephemeral, iss, jti, exp, Math.floor(Date.now() / 1000))),
  );

  // JWT access tokens oidc-provider will not revoke (it does not store them): Tessera does.
  const revokeJwtAccessToken = createJwtAccessTokenRevocation({
    issuer: config.issuer,
    verificationKey: deps.signingKeys.verificationKey,
    revokeGrant: async (grantId) => {
      // As oidc-provider's own revocation of a grant (lib/helpers/revoke.js): everything issued under it, then it.
      await Promise.all([deps.adapterFactory('AccessToken').revokeByGrantId(grantId), deps.adapterFactory('Grant').destroy(grantId)]);
    },
    jwtRevocations: deps.jwtRevocations,
  });

  // The refresh-token reuse grace on both paths: here inside oidc-provider's refresh_token
  // handler (reuse detection happens in it), and in the direct refresh grant.
  const reuseGrace = config.oauth.refreshTokenReuseGraceSeconds > 0
    ? createRefreshReuseGrace({
      store: deps.ephemeral,
      graceSeconds: config.oauth.refreshTokenReuseGraceSeconds,
      onKeepFailed: (error) => deps.logger.warn({ err: error }, 'could not keep a refresh answer for its reuse grace'),
      ...(deps.clock ? { clock: deps.clock } : {}),
    })
    : undefined;
  if (reuseGrace) wrapGrantHandler(provider, 'refresh_token', (original) => refreshWithGrace(provider, reuseGrace, original));

  // A POST /device without a session answers its form with the error, not a 500 (internals.ts says why).
  skipPersistingUnsavedSessions(provider);

  const devicePolls = createDevicePollPolicy({ store: deps.ephemeral, intervalSeconds: config.oauth.devicePollIntervalSeconds });

  // One middleware around every oidc-provider request (each layer costs every request its turn):
  // Basic credentials that need it are re-encoded; afterwards, two answers are amended.
  provider.use(async (ctx, next) => {
    try {
      const basic = parseBasicAuthorization(ctx.get('authorization') || undefined);
      if (basic && (isFormEncoded(basic.id) || isFormEncoded(basic.secret))) {
        ctx.req.headers.authorization = normaliseBasicHeader(basic);
        await rawBasicSecret.run(basic.secret, next);
      } else {
        // Nothing to decode: what oidc-provider decodes is exactly what was sent.
        await next();
      }
    } catch (error) {
      if (await outages.answered(ctx as KoaContextWithOIDC, error)) return;
      throw error;
    }
    if (ctx.status === 400 && ctx.path === OIDC_ROUTES.token) correctDisallowedGrantError(ctx.body);
    outages.retryAfter(ctx as KoaContextWithOIDC);
    if (ctx.status === 400 && ctx.path === OIDC_ROUTES.revocation && refusedAsStructured(ctx.body)) {
      // The caller is authenticated by now (client authentication comes before this refusal).
      const caller = ctx.oidc?.client as unknown as TesseraClient | undefined;
      const token = ctx.oidc?.params?.token;
      if (!caller || typeof token !== 'string') return;
      try {
        const revoked = await revokeJwtAccessToken(token, (tokenClientId) => mayRevoke(caller, tokenClientId));
        if (revoked) recordJwtRevocation(deps.audit, ctx as KoaContextWithOIDC, revoked);
      } catch (error) {
        // A store outage is answered as every other (503, Retry-After); anything else is a fault.
        if (await outages.answered(ctx as KoaContextWithOIDC, error)) return;
        throw error;
      }
      // RFC 7009 §2.2: 200 whether or not there was anything to revoke.
      ctx.status = 200;
      ctx.body = '';
      return;
    }
    if (ctx.method === 'POST' && ctx.path === OIDC_ROUTES.code_verification) recordDeviceCancelled(deps.audit, ctx as KoaContextWithOIDC);
    if (ctx.status === 200 && ctx.path === OIDC_ROUTES.revocation) {
      const caller = ctx.oidc?.client as unknown as TesseraClient | undefined;
      if (caller) recordRevocation(deps.audit, ctx as KoaContextWithOIDC, (tokenClientId) => mayRevoke(caller, tokenClientId));
      return;
    }
    if (ctx.status !== 200 || !ctx.body || typeof ctx.body !== 'object') return;
    if (ctx.path === OIDC_ROUTES.device_authorization) {
      // RFC 8628 §3.2: tell the device how long to wait between polls, and remember its PKCE challenge.
      const body = ctx.body as Record<string, unknown>;
      body.interval = config.oauth.devicePollIntervalSeconds;
      try {
        await devicePolls.started(String(body.device_code), Number(body.expires_in), (ctx.req as { tesseraCodeChallenge?: string }).tesseraCodeChallenge);
      } catch (error) {
        if (!(await outages.answered(ctx as KoaContextWithOIDC, error))) throw error;
      }
    } else if (ctx.path === '/.well-known/openid-configuration') {
      // Introspection is answered by Tessera itself (introspection-endpoint.ts): for resource
      // servers authenticated by secret or private_key_jwt (RFC 8414 would assume
      // client_secret_basic alone), in JSON or, asked for, as a JWT signed with the key that signs
      // tokens (RFC 9701; never encrypted: docs/resource-servers.md#signed-introspection-answers).
      const body = ctx.body as Record<string, unknown>;
      body.introspection_endpoint_auth_methods_supported = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];
      // RFC 8414 §2: REQUIRED once private_key_jwt is advertised.
      body.introspection_endpoint_auth_signing_alg_values_supported = [...CLIENT_ASSERTION_ALGORITHMS];
      body.introspection_signing_alg_values_supported = [config.oauth.signingAlgorithm];
      delete body.introspection_encryption_alg_values_supported;
      delete body.introspection_encryption_enc_values_supported;
      // OpenID Connect's UserInfo endpoint is Tessera's own (src/routes/oauth/userinfo-endpoint.ts).
      body.userinfo_endpoint = new URL(OIDC_ROUTES.userinfo, String(body.token_endpoint)).href;
      // Revocation authenticates clients exactly as the token endpoint does.
      body.revocation_endpoint_auth_methods_supported = body.token_endpoint_auth_methods_supported;
      body.revocation_endpoint_auth_signing_alg_values_supported = body.token_endpoint_auth_signing_alg_values_supported;
      // The header names forward-auth and /api/v1 take credentials from (RFC 8414 §2 allows
      // members of one's own): a resource server reads them here instead of being told them again
      // (@tessera/verifier's credentialHeaders: 'discovery', docs/resource-servers.md).
      body.tessera_session_header_aliases = [...config.sessions.headerAliases];
      body.tessera_api_key_header = config.tokens.apiKeyHeader;
      body.tessera_api_user_header = config.tokens.apiUserHeader;
    }
  });

  // A spent refresh token (or code) presented again: oidc-provider ends its login and says so.
  provider.on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) => recordReuseDetected(deps.audit, ctx, grantId));

  provider.on('server_error', (ctx: KoaContextWithOIDC, error: Error) => {
    deps.logger.error({ err: error, path: ctx.path }, 'oidc-provider server error');
  });
  // What escapes oidc-provider's own error handling reaches koa's, which would print it to stderr
  // as plain text (app.onerror): with a listener of its own, koa leaves it to the JSON log. (The
  // provider is a koa application; its types list only oidc-provider's own events.)
  (provider as unknown as NodeJS.EventEmitter).on('error', (error: Error & { status?: number; expose?: boolean }, ctx?: { path?: string; method?: string }) => {
    const where = { path: ctx?.path, method: ctx?.method };
    if (error.expose || (typeof error.status === 'number' && error.status < 500)) deps.logger.warn({ ...where, status: error.status, reason: error.message }, 'oidc-provider refused a request');
    else deps.logger.error({ ...where, err: error }, 'oidc-provider request failed');
  });

  // With oauth.directGrants off, every grant goes through oidc-provider.
  const directGrants = config.oauth.directGrants
    ? [
        createClientCredentialsGrant({ provider, knownScopes: new Set(configuration.scopes), defaultResource, resourceServerInfo }),
        // (Issues for the refresh token's granted resource, as useGrantedResource above says.)
        createRefreshTokenGrant({ provider, findAccount, rotates: configuration.rotateRefreshToken === true, resourceServerInfo, reuseGrace }),
      ]
    : [];
  return { provider, devicePolls, directGrants };
}

/**
 * The scopes a request asks for, wherever oidc-provider holds them at this point: the request's
 * `scope`, and the scopes of the code, device code, refresh token or grant it redeems. Only path
 * scopes among them matter (resourceScopes); the grant's consent still bounds what is issued.
 */
function requestedScopes(ctx: KoaContextWithOIDC, resource: string): string[] {
  const found = new Set<string>();
  const add = (value: unknown) => {
    if (typeof value === 'string') for (const scope of value.split(' ')) if (scope) found.add(scope);
  };
  add(ctx.oidc?.params?.scope);
  const entities = (ctx.oidc?.entities ?? {}) as Record<string, { scope?: unknown; getResourceScope?: (resource: string) => unknown } | undefined>;
  for (const name of ['AuthorizationCode', 'DeviceCode', 'RefreshToken', 'BackchannelAuthenticationRequest']) add(entities[name]?.scope);
  add(entities.Grant?.getResourceScope?.(resource));
  return [...found];
}

/**
 * oidc-provider's refresh_token handler inside the reuse grace: a token rotated within the grace
 * gets its rotation's answer again, and of concurrent refreshes only one runs the handler (the
 * others wait for its answer). Otherwise, and after the grace, the handler answers as it does
 * (reuse revokes the grant). With DPoP the answer is kept for the client and the proof's key
 * together: a retry gets it only with a fresh, valid proof of the same key (its jti claimed here,
 * since the handler, which would, does not run), so a bound token is never handed to another key.
 */
function refreshWithGrace(provider: Provider, grace: RefreshReuseGrace, original: (ctx: KoaContextWithOIDC) => Promise<void>) {
  return async (ctx: KoaContextWithOIDC): Promise<void> => {
    const value = ctx.oidc.params?.refresh_token;
    const clientId = ctx.oidc.client?.clientId;
    if (typeof value !== 'string' || !clientId) return original(ctx);
    const proof = await tokenEndpointDpopProof(provider, ctx);
    const holder = proof ? `${clientId} dpop:${proof.thumbprint}` : clientId;
    let rotated = false;
    let answer: TokenAnswerBody | null;
    try {
      answer = await grace.answer(value, holder, async () => {
        rotated = true;
        await original(ctx);
        return ctx.body as TokenAnswerBody;
      });
    } catch (error) {
      if (!(error instanceof RotationInFlight)) throw error;
      ctx.set('Retry-After', '1');
      throw Object.assign(new errors.TemporarilyUnavailable(error.message), { status: 503, statusCode: 503 });
    }
    if (answer === null) return original(ctx);
    if (proof && !rotated) await claimTokenEndpointDpopProof(provider, ctx, proof, clientId);
    ctx.body = answer;
  };
}
