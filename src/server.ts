import cluster from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { HashingBusyError } from './accounts/hashing/bounded-hasher.ts';
import { lowerHashingPriority } from './accounts/hashing/hashing-priority.ts';
import { createUserCache } from './accounts/user-cache.ts';
import { createClientMetadataCache } from './clients/client-metadata-cache.ts';
import { clientScopesOf } from './clients/oidc-client-metadata.ts';
import { resolveSecrets } from './config/secrets.ts';
import type { Config } from './config/schema.ts';
import { openCore, type OnlineCore } from './core.ts';
import { createApp } from './http/app.ts';
import { createConnectionDrain, type ConnectionDrain } from './http/connection-drain.ts';
import { createIssuerSelfCheck, type IssuerCheckResult, type IssuerSelfCheck } from './http/issuer-self-check.ts';
import { withFastRoutes } from './http/raw-http.ts';
import { countRequests } from './http/request-metrics.ts';
import { listRoutes, type RouteEntry } from './http/route-inventory.ts';
import { compileTrustProxy } from './http/trust-proxy.ts';
import { createCachedCredentialVerifier, type CredentialCacheStats } from './introspection/credential-cache.ts';
import { createCredentialVerifier } from './introspection/credential-verifier.ts';
import { createIntrospectionCallers, type CallerMetadata } from './introspection/introspection-callers.ts';
import { createFailedLookupLimiter } from './introspection/failed-lookup-limiter.ts';
import { createIntrospectionSigner } from './introspection/introspection-signer.ts';
import { createResourceNonces, createSenderConstraintCheck } from './introspection/sender-constraint.ts';
import { dpopNonceSecret } from './oauth/dpop-nonce-secret.ts';
import { createMetrics, type Metrics } from './metrics/metrics.ts';
import { startMetricsListener, type MetricsListener } from './metrics/metrics-listener.ts';
import { findOidcToken, findOidcTokenByDigest } from './oauth/adapter/stored-payload.ts';
import { createExchangedTokens } from './oauth/adapter/exchanged-tokens.ts';
import { registerTokenExchange } from './oauth/grants/token-exchange-grant.ts';
import { createTokenRequestCheck, refreshTokenUserScopesFrom } from './oauth/grants/token-request-rules.ts';
import { createOidcProvider, OIDC_ROUTES } from './oauth/provider/provider.ts';
import { createSigningKeyStore } from './oauth/signing-keys.ts';
import { createPublishedSigningKeys, type PublishedSigningKeys } from './oauth/published-signing-keys.ts';
import { invalidationTarget, type InvalidationSubscriber } from './cache/invalidations.ts';
import { createApiReferenceRoutes, packageVersion } from './routes/api-reference-routes.ts';
import { createBrandRoutes } from './routes/brand-routes.ts';
import { createHomeRoutes } from './routes/home-routes.ts';
import { createForwardAuthRoutes } from './routes/forward-auth-routes.ts';
import { createHealthRoutes } from './routes/health-routes.ts';
import { createIntrospectionEndpoint } from './routes/oauth/introspection-endpoint.ts';
import { createOAuthRoutes, providerRoutes } from './routes/oauth/oauth-routes.ts';
import { createTokenEndpoint, type TokenAnswerEvent } from './routes/oauth/token-endpoint.ts';
import { createPersonalTokenRoutes } from './routes/personal-token-routes.ts';
import { createLeakedTokenRoutes } from './routes/leaked-token-routes.ts';
import { createLeakReports } from './leaked-tokens/leak-reports.ts';
import { createReporterKeys } from './leaked-tokens/reporter-keys.ts';
import { leakNotice } from './leaked-tokens/leak-notice.ts';
import { createAdminRoutes } from './routes/admin/admin-routes.ts';
import { createAdminConsoleRoutes } from './routes/console/console-routes.ts';
import { createShownOnce } from './http/shown-once.ts';
import { apiRateLimit, createSessionRoutes } from './routes/session-routes.ts';
import { createCallerAuthenticator } from './routes/settings/caller.ts';
import { createSettingsRoutes } from './routes/settings/settings-routes.ts';
import { createUpstreamSignInRoutes } from './routes/identity-providers/upstream-sign-in-routes.ts';
import { createAuthorizedLoginRoutes } from './routes/settings/authorized-logins-routes.ts';
import { createAuthorizedLogins } from './oauth/authorized-logins.ts';
import { createPasswordRoutes } from './routes/settings/password-routes.ts';
import { createPasswordChange } from './sessions/password-change.ts';
import { createMailSender } from './accounts/mail-sender.ts';
import { createPasswordReset } from './sessions/password-reset.ts';
import { createPasswordResetRepository } from './sessions/password-reset-repository.ts';
import { createPasswordResetRoutes } from './routes/settings/password-reset-routes.ts';
import { createBrowserSessionStarter } from './routes/settings/browser-session.ts';
import { createSecondFactorStep, type SecondFactorStep } from './routes/second-factor/second-factor-step.ts';
import { createSignInStepRoutes } from './routes/second-factor/sign-in-step-routes.ts';
import { createSecondFactorSettingsRoutes } from './routes/second-factor/second-factor-settings-routes.ts';
import { createPasskeyScriptRoute } from './routes/second-factor/passkey-script.ts';
import type { CallerAuthenticator } from './routes/settings/caller.ts';
import type { EphemeralStore, Subscription } from './store/ephemeral/ephemeral-store.ts';
import type { PasswordSignIn } from './sessions/password-sign-in.ts';
import { openEphemeralStore } from './store/open-stores.ts';
import { withCounterFallback } from './store/ephemeral/counter-fallback.ts';
import type { Awaitable } from './shared/awaitable.ts';

export interface RunningTessera {
  server: Server;
  /** The URL it listens on (useful with port 0). */
  url: string;
  core: OnlineCore;
  ephemeral: EphemeralStore;
  /** The introspection cache's figures (entries, hits, misses, whether it serves from memory). */
  introspectionCache: { stats(): CredentialCacheStats };
  /** Where this process serves its Prometheus metrics (TESSERA_METRICS_PORT; a worker's are served by its supervisor). */
  metricsUrl?: string;
  /** The start's check that the issuer leads to this process (not awaited by the start; it warns if not). */
  issuerCheck: Promise<IssuerCheckResult>;
  /** Every route it serves (express's, oidc-provider's, the node:http ones) and its methods. */
  routes(): RouteEntry[];
  /** Ends the issuer check, stops accepting, drains (up to http.shutdownGraceMs), then closes the stores. */
  stop(): Promise<void>;
}

interface Closeable {
  close(): Promise<void>;
}

/** Runs `build`; if it fails, closes what was opened before it, then rethrows. */
async function closingOnFailure<T>(opened: readonly Closeable[], build: () => Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (error) {
    await Promise.allSettled(opened.map((resource) => resource.close()));
    throw error;
  }
}

/** On an empty database, the first account; a generated password is printed once, to the console. */
async function greetFirstAdmin(core: OnlineCore): Promise<void> {
  const { config, logger } = core;
  const admin = await core.accounts.ensureInitialAdmin(config.admin.username, config.admin.password);
  if (admin?.generatedPassword) {
    // Printed on purpose to the console rather than the log stream: it is a secret.
    process.stderr.write(
      `\n  Created the first account "${admin.user.username}" with the password:\n\n      ${admin.generatedPassword}\n\n` +
        `  It is shown only now. Change it with: npx tessera user passwd ${admin.user.username}` +
        // The embedded database admits one process at a time: the command cannot run beside this server.
        `${config.database.url ? '' : '\n  once this server is stopped (the embedded database admits one process at a time)'}\n\n`,
    );
  } else if (admin) {
    logger.info({ username: admin.user.username }, 'created the first account with the configured TESSERA_ADMIN_PASSWORD');
  }
  const reniced = await lowerHashingPriority(config.passwords.hashing.niceness, logger);
  if (reniced) logger.debug({ threads: reniced, niceness: config.passwords.hashing.niceness }, 'lowered the priority of the password-hashing threads');
}

/** The newest cookie key, which also keys the CSRF tokens (resolveSecrets never gives none). */
function newestCookieKey(cookieKeys: readonly string[]): string {
  const [newest] = cookieKeys;
  if (newest === undefined) throw new Error('no cookie key is configured (TESSERA_COOKIE_KEYS)');
  return newest;
}

/**
 * The OAuth side: secrets and signing keys, the in-memory caches (subscribed to invalidations
 * before they serve), the credential verifier, introspection callers and oidc-provider.
 */
async function buildOAuth(core: OnlineCore, subscriptions: Subscription[], clock: (() => number) | undefined) {
  const { config, logger, ephemeral, oidcAdapters } = core;
  const clocked = clock ? { clock } : {};
  const secrets = await resolveSecrets(config, logger);
  const nonceSecret = dpopNonceSecret(secrets.keyEncryptionSecret);
  const keyStore = createSigningKeyStore({ database: core.database, secret: secrets.keyEncryptionSecret, algorithm: config.oauth.signingAlgorithm });
  const { kid, created } = await keyStore.ensureSigningKey();
  if (created) logger.info({ kid }, 'generated the first signing key');
  const signingKeys = await createPublishedSigningKeys({ store: keyStore, logger, ...clocked });
  const clientMetadata = createClientMetadataCache((clientId) => core.clients.findOidcMetadata(clientId), clocked);
  const users = createUserCache((id) => core.accounts.findUserById(id), clocked);
  const exchangedTokens = createExchangedTokens(ephemeral);
  const verifier = createCachedCredentialVerifier(
    createCredentialVerifier({
      config,
      accounts: users,
      clients: { findOidcMetadata: (clientId) => clientMetadata.peekOidcMetadata(clientId) },
      sessions: core.sessions,
      personalTokens: core.personalTokens,
      oidcModel: oidcAdapters,
      findOidcToken: (value, models) => findOidcToken(ephemeral, value, models),
      findOidcTokenByDigest: (digest, models) => findOidcTokenByDigest(ephemeral, digest, models),
      exchangedTokenLinks: (jti) => exchangedTokens.links(jti),
      verificationKey: signingKeys.verificationKey,
      jwtRevoked: (jti) => core.jwtRevocations.isRevoked(jti),
      ...clocked,
    }),
    {
      maxEntries: config.introspection.cacheMaxEntries,
      activeTtlMs: config.introspection.cacheTtlSeconds * 1000,
      inactiveTtlMs: config.introspection.inactiveCacheTtlSeconds * 1000,
      ...clocked,
    },
  );
  const introspectionCallers = createIntrospectionCallers({
    issuer: config.issuer,
    endpointUrl: new URL(OIDC_ROUTES.introspection, config.issuer).href,
    tokenEndpointUrl: new URL(OIDC_ROUTES.token, config.issuer).href,
    findClient: (clientId) => clientMetadata.peekOidcMetadata(clientId) as Awaitable<CallerMetadata | undefined>,
    ephemeral,
    ...clocked,
  });
  // Caches serve from memory only while they hear every invalidation.
  for (const subscriber of [verifier, clientMetadata, users, core.grants]) {
    subscriptions.push(await core.invalidations.subscribe(subscriber));
    subscriber.channelState('up');
  }
  subscriptions.push(await core.invalidations.subscribe(signingKeyReloads(signingKeys, logger)));
  const { provider, devicePolls, directGrants } = createOidcProvider({
    config,
    logger,
    accounts: users,
    clients: clientMetadata,
    adapterFactory: oidcAdapters,
    signingKeys,
    jwtRevocations: core.jwtRevocations,
    cookieKeys: secrets.cookieKeys,
    dpopNonceSecret: nonceSecret,
    audit: core.audit,
    ephemeral,
    ...clocked,
  });
  // RFC 8693 token exchange, inside oidc-provider (oauth/grants/token-exchange-grant.ts).
  registerTokenExchange(provider, {
    issuer: config.issuer,
    resources: config.oauth.resources,
    ttlSeconds: config.oauth.tokenExchangeTtlSeconds,
    signingKeys,
    // Bound tokens are answered (senderConstrained) so that the exchange can refuse them by name.
    verifyCredential: (value) => verifier.verify(value, { refreshTokens: false, senderConstrained: true }),
    pathScopes: new Set(config.pathScopes),
    users,
    exchangedTokens,
    audit: core.audit,
    failedLookups: createFailedLookupLimiter({ failures: config.introspection.failedLookupsPerSource, windowSeconds: config.introspection.failedLookupWindowSeconds, ...clocked }),
    ...clocked,
  });
  const tokenRequestCheck = createTokenRequestCheck({
    devicePolls,
    clientScopes: async (clientId) => clientScopesOf(await clientMetadata.peekOidcMetadata(clientId)),
    refreshTokenUserScopes: refreshTokenUserScopesFrom(oidcAdapters('RefreshToken'), users),
    pathScopes: config.pathScopes,
  });
  // RFC 9701 answers are signed with the key that signs tokens now (the first of the set).
  const introspectionSigner = createIntrospectionSigner({ issuer: config.issuer, signingKeys, ...clocked });
  // DPoP-bound tokens at Tessera's own resource paths (forward-auth, /api/v1/me, userinfo).
  const { proofMaxAgeSeconds, resourceNonces } = config.oauth.dpop;
  const nonces = resourceNonces ? createResourceNonces(nonceSecret, proofMaxAgeSeconds) : undefined;
  const senderConstraint = createSenderConstraintCheck({ ephemeral, proofMaxAgeSeconds, nonces, ...clocked });
  return { csrfKey: newestCookieKey(secrets.cookieKeys), verifier, senderConstraint, introspectionCallers, introspectionSigner, provider, devicePolls, directGrants, tokenRequestCheck };
}

type OAuthParts = Awaited<ReturnType<typeof buildOAuth>>;

/**
 * Reads the signing keys again when a rotation is announced, and when the invalidation channel
 * comes back (an announcement may have been lost while it was down).
 */
function signingKeyReloads(keys: PublishedSigningKeys, logger: Logger): InvalidationSubscriber {
  const reload = () => void keys.reload().catch((error: unknown) => logger.error({ err: error }, 'could not read the signing keys again; still signing with the ones loaded before'));
  return {
    invalidate: (targets) => {
      if (targets.includes(invalidationTarget.signingKeys())) reload();
    },
    channelState: (state) => {
      if (state === 'up') reload();
    },
  };
}

/** The OpenID scopes of a grant (oidc-provider's Grant keeps them as `openid.scope`), undefined once it is gone. */
async function grantOpenIdScopes(core: OnlineCore, grantId: string): Promise<string[] | undefined> {
  const grant = (await core.oidcAdapters('Grant').find(grantId)) as { openid?: { scope?: unknown } } | undefined;
  return grant ? String(grant.openid?.scope ?? '').split(' ').filter(Boolean) : undefined;
}

/** /login/forgot and /login/reset, where mail is configured (none otherwise: /login offers no reset). */
function passwordResetRoutes(core: OnlineCore, clock: (() => number) | undefined): { router: ReturnType<typeof createPasswordResetRoutes> }[] {
  const { config } = core;
  if (config.mail === null) return [];
  const passwordReset = createPasswordReset({
    config: { ...config, mail: config.mail },
    accounts: core.accounts,
    resets: createPasswordResetRepository(core.database),
    counters: core.ephemeral,
    mail: createMailSender(config.mail),
    audit: core.audit,
    logger: core.logger,
    ...(clock ? { clock } : {}),
  });
  return [{ router: createPasswordResetRoutes({ config, passwordReset }) }];
}

/** POST /api/v1/leaked-tokens/<reporter>, where leakedTokens.enabled (docs/leaked-tokens.md); none otherwise. */
function leakedTokenRoutes(core: OnlineCore, clock: (() => number) | undefined) {
  const { config, logger } = core;
  const leaked = config.leakedTokens;
  if (!leaked.enabled) return [];
  const mail = config.mail ? createMailSender(config.mail) : null;
  for (const [name, { keysUrl }] of Object.entries(leaked.reporters)) {
    // Whoever can change the keys on the way can have any token revoked.
    if (new URL(keysUrl).protocol !== 'https:') logger.warn({ reporter: name, keysUrl }, 'the keys of this leaked-token reporter are read over plain HTTP: use an https URL outside tests');
  }
  const reporters = new Map(
    Object.entries(leaked.reporters).map(([name, { keysUrl }]) => [
      name,
      createReporterKeys({ name, keysUrl, logger, refreshMs: leaked.keyRefreshSeconds * 1000, maxAgeMs: leaked.keyMaxAgeSeconds * 1000, ...(clock ? { clock } : {}) }),
    ]),
  );
  const leakReports = createLeakReports({
    personalTokens: core.personalTokens,
    sessions: core.sessions,
    audit: core.audit,
    ephemeral: core.ephemeral,
    // No session or OAuth token lives longer than this: past it, a reported one could not be live anyway.
    endedSessionMemoryMs: Math.max(config.sessions.absoluteTimeoutSeconds, config.sessions.nonExpiringMaxSeconds, config.oauth.refreshTokenTtlSeconds, config.oauth.accessTokenTtlSeconds) * 1000,
    oauthTokens: {
      find: (value) => findOidcToken(core.ephemeral, value, ['RefreshToken', 'AccessToken', 'ClientCredentials']),
      revokeGrant: (grantId) => core.oidcAdapters('Grant').revokeByGrantId(grantId),
      destroy: (model, value) => core.oidcAdapters(model).destroy(value),
    },
    logger,
    ...(mail ? { notifyOwner: notifyByMail(core, mail) } : {}),
  });
  return [createLeakedTokenRoutes({ reporters, leakReports, maxBodyBytes: leaked.maxBodyBytes, maxTokensPerReport: leaked.maxTokensPerReport })];
}

/** E-mails an owner with an address what a leaked-token report ended. */
function notifyByMail(core: OnlineCore, mail: ReturnType<typeof createMailSender>) {
  return async (userId: string, ended: Parameters<typeof leakNotice>[2]) => {
    const user = await core.accounts.findUserById(userId);
    if (!user?.email) return;
    await mail.send({ to: user.email, ...leakNotice(core.config.branding.productName, user.username, ended, core.config.issuer) });
  };
}

/** How long a secret made in the admin console waits for the page that shows it once. */
const SHOWN_ONCE_TTL_MS = 5 * 60_000;

/** The HTTP server: the two hottest endpoints on node:http (raw-http.ts), everything else on express. */
function buildServer(core: OnlineCore, oauth: OAuthParts, issuerCheck: IssuerSelfCheck, metrics: Metrics | undefined, options: StartOptions): { server: Server; connections: ConnectionDrain; routes: () => RouteEntry[] } {
  const { config, logger, ephemeral, sessions } = core;
  const trustsProxy = compileTrustProxy(config.http.trustProxy);
  // Every channel that takes a password shares one sign-in, and so one limit per account.
  const signIn = metrics ? countedSignIn(core.signIn, metrics) : core.signIn;
  // One allowance per introspecting client, one per client address at forward-auth.
  const failedLookupLimit = { failures: config.introspection.failedLookupsPerSource, windowSeconds: config.introspection.failedLookupWindowSeconds, ...(options.clock ? { clock: options.clock } : {}) };
  const callers = createCallerAuthenticator({ config, accounts: core.accounts, sessions, personalTokens: core.personalTokens, csrfKey: oauth.csrfKey });
  // Secrets made by a form (a token, a client secret) wait here for the one page that shows them.
  const shownOnce = createShownOnce({ ephemeral, ttlMs: SHOWN_ONCE_TTL_MS });
  // The second step of every browser sign-in (password now; upstream providers route through it too).
  const secondStep = createSecondFactorStep({ config, accounts: core.accounts, secondFactors: core.secondFactors, passkeys: core.passkeys, pendingSignIns: core.pendingSignIns });
  const server = createServer();
  const connections = createConnectionDrain(server);
  const app = createApp({
    config,
    logger,
    trustProxy: trustsProxy,
    rawBodyRoutes: leakedTokenRoutes(core, options.clock),
    oauthRoutes: createOAuthRoutes({ config, provider: oauth.provider, devicePolls: oauth.devicePolls, accounts: core.accounts, ephemeral, csrfKey: oauth.csrfKey, signIn, secondStep, audit: core.audit, trustsProxy: (address) => trustsProxy(address, 0), userinfo: { verifier: oauth.verifier, senderConstraint: oauth.senderConstraint, grantOpenIdScopes: (grantId) => grantOpenIdScopes(core, grantId) } }),
    apiRoutes: [
      { router: createHealthRoutes({ database: core.database, ephemeral, draining: connections.isDraining }) },
      { router: createBrandRoutes({ config }) },
      { router: createHomeRoutes({ callers }) },
      // Counted in process while Redis is away: what needs only PostgreSQL keeps working.
      { paths: ['/api', '/users', '/logout'], router: apiRateLimit(config, withCounterFallback(ephemeral)) },
      ...passwordResetRoutes(core, options.clock),
      { router: createUpstreamSignInRoutes({ config, provider: oauth.provider, identityProviders: core.identityProviders, accounts: core.accounts, sessions, audit: core.audit, callers, secondStep }) },
      { router: createSettingsRoutes({ config, sessions, personalTokens: core.personalTokens, audit: core.audit, auditQuery: core.auditQuery, signIn, callers, shownOnce, secondStep }) },
      ...secondFactorRoutes(core, { secondStep, callers, csrfKey: oauth.csrfKey }),
      { router: createAuthorizedLoginRoutes({ logins: createAuthorizedLogins({ grants: core.oidcAdapters('Grant'), providerSessions: core.oidcAdapters('Session'), clients: core.clients, audit: core.audit }), sessions, audit: core.audit, callers }) },
      { router: createPasswordRoutes({ config, accounts: core.accounts, passwordChange: createPasswordChange({ accounts: core.accounts, limiter: core.loginLimiter, audit: core.audit }), sessions, audit: core.audit, callers }) },
      { router: createAdminRoutes({ callers, accounts: core.accounts, signIn: core.signIn, clients: core.clients, signingKeys: core.signingKeys, auditQuery: core.auditQuery, identityProviders: core.identityProviders, issuer: config.issuer }) },
      {
        router: createAdminConsoleRoutes({
          config,
          callers,
          accounts: core.accounts,
          signIn: core.signIn,
          auditQuery: core.auditQuery,
          clients: core.clients,
          signingKeys: core.signingKeys,
          shownOnce,
          identityProviders: core.identityProviders,
        }),
      },
      { router: createPersonalTokenRoutes({ personalTokens: core.personalTokens, callers, verifier: oauth.verifier, senderConstraint: oauth.senderConstraint, findUserById: (id) => core.accounts.findUserById(id) }) },
      { router: createForwardAuthRoutes({ config, logger, verifier: oauth.verifier, senderConstraint: oauth.senderConstraint, findUserByLogin: (login) => core.accounts.findUserByLogin(login), failedLookups: createFailedLookupLimiter(failedLookupLimit) }) },
      { router: createSessionRoutes({ config, accounts: core.accounts, sessions, signIn, audit: core.audit, secondFactors: core.secondFactors }) },
      { router: createApiReferenceRoutes({ config, version: packageVersion() }) },
    ],
  });
  const isTrustedProxy = (address: string) => trustsProxy(address, 0);
  const introspection = createIntrospectionEndpoint({
    issuer: config.issuer,
    logger,
    callers: oauth.introspectionCallers,
    verifier: oauth.verifier,
    trustsProxy: isTrustedProxy,
    failedLookups: createFailedLookupLimiter(failedLookupLimit),
    signer: oauth.introspectionSigner,
    ...(metrics ? { onAnswered: (kind: string | null) => metrics.introspectionAnswered(kind) } : {}),
  });
  const token = createTokenEndpoint({ issuer: config.issuer, logger, provider: oauth.provider, trustsProxy: isTrustedProxy, directGrants: oauth.directGrants, check: oauth.tokenRequestCheck, onAnswer: options.onTokenAnswer });
  // The issuer check fetches the discovery document, which express serves: the two hot routes skip it.
  // The token endpoint's other methods are oidc-provider's (providerRoutes lists them).
  const routes = () => [...listRoutes(app), ...providerRoutes(oauth.provider).filter((route) => route.path !== OIDC_ROUTES.introspection), { path: OIDC_ROUTES.introspection, methods: ['POST'] }];
  const handler = withFastRoutes({ [OIDC_ROUTES.introspection]: introspection, [OIDC_ROUTES.token]: token }, issuerCheck.handle(app));
  server.on('request', connections.handle(metrics ? countRequests(metrics, routes, handler) : handler));
  server.keepAliveTimeout = 65_000;
  return { server, connections, routes };
}

/** The second step at /login and the two-step settings pages (docs/second-factors.md). */
function secondFactorRoutes(core: OnlineCore, { secondStep, callers, csrfKey }: { secondStep: SecondFactorStep; callers: CallerAuthenticator; csrfKey: string }) {
  const startSession = createBrowserSessionStarter({ config: core.config, sessions: core.sessions, audit: core.audit });
  return [
    { router: createSignInStepRoutes({ config: core.config, secondStep, secondFactors: core.secondFactors, startSession, findUserById: (id) => core.accounts.findUserById(id), csrfKey }) },
    { router: createSecondFactorSettingsRoutes({ accounts: core.accounts, secondFactors: core.secondFactors, passkeys: core.passkeys, callers }) },
    { router: createPasskeyScriptRoute() },
  ];
}

async function listen(server: Server, config: Config): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.http.port, config.http.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
}

/**
 * Stops accepting and drains (http/connection-drain.ts): answers in flight end with
 * `Connection: close`, quiet connections are closed, and the stores close as soon as no
 * connection is left, or once the grace period is over.
 */
function drainer(connections: ConnectionDrain, core: OnlineCore, subscriptions: Subscription[]): () => Promise<void> {
  const { config, logger } = core;
  let stopping: Promise<void> | undefined;
  const drain = async () => {
    const started = Date.now();
    if ((await connections.drain(config.http.shutdownGraceMs)) === 'timeout') {
      logger.warn({ graceMs: config.http.shutdownGraceMs }, 'requests still in flight after the grace period; closed their connections');
    } else {
      logger.info({ ms: Date.now() - started }, 'drained: no request in flight');
    }
    await Promise.allSettled(subscriptions.map((s) => s.close()));
    // Audit events written in the background (sign-ins, OAuth events) land before the database closes.
    await core.audit.settled();
    await Promise.allSettled([core.ephemeral.close(), core.database.close()]);
    logger.info('Tessera stopped');
  };
  return () => (stopping ??= drain());
}

export interface StartOptions {
  clock?: () => number;
  /** Told who answered each token request (Tessera or oidc-provider), once it is answered. */
  onTokenAnswer?: (answer: TokenAnswerEvent) => void;
  /** How long the start's issuer check waits for an answer (http/issuer-self-check.ts). */
  issuerCheckTimeoutMs?: number;
}

/** Wires every real dependency, creates the first admin if needed, listens, then checks (not awaited) that the issuer leads here. */
export async function startTessera(config: Config, logger: Logger, options: StartOptions = {}): Promise<RunningTessera> {
  const metrics = config.metrics.port === null ? undefined : createMetrics();
  const ephemeral = await openEphemeralStore(config, logger, metrics ? { observe: metrics.storeCommand } : {});
  const observers = metrics && { storeCommand: metrics.storeCommand, revoked: metrics.credentialRevoked };
  const core = await closingOnFailure([ephemeral], () => openCore(config, logger, { ephemeral, ...options, ...(observers ? { observers } : {}) }));
  const subscriptions: Subscription[] = [];
  const opened: Closeable[] = [{ close: async () => void (await Promise.allSettled(subscriptions.map((s) => s.close()))) }, ephemeral, core.database];
  const oauth = await closingOnFailure(opened, async () => {
    await greetFirstAdmin(core);
    return buildOAuth(core, subscriptions, options.clock);
  });
  const issuerSelfCheck = createIssuerSelfCheck({ issuer: config.issuer, logger, timeoutMs: options.issuerCheckTimeoutMs });
  if (metrics) {
    countOAuthAndHashing(metrics, core, oauth);
    subscriptions.push(await core.invalidations.observeLag((seconds) => metrics.invalidationArrived(seconds)));
  }
  const { server, connections, routes } = buildServer(core, oauth, issuerSelfCheck, metrics, options);
  const url = await closingOnFailure(opened, () => listen(server, config));
  const metricsListener = metrics && (await closingOnFailure([...opened, { close: () => closeServer(server) }], () => serveMetrics(metrics, config, logger)));
  logger.info({ url, issuer: config.issuer, ...(metricsListener ? { metrics: `${metricsListener.url}/metrics` } : {}) }, 'Tessera is listening');
  const stopChecking = new AbortController();
  const drain = drainer(connections, core, subscriptions);
  const stop = async () => {
    stopChecking.abort();
    await Promise.all([drain(), metricsListener?.close()]);
  };
  return {
    server,
    url,
    ...(metricsListener ? { metricsUrl: metricsListener.url } : {}),
    core,
    ephemeral,
    introspectionCache: { stats: () => oauth.verifier.stats() },
    issuerCheck: issuerSelfCheck.run(url, stopChecking.signal),
    routes,
    stop,
  };
}

/** The tokens oidc-provider issues, counted from its events ('<model>.saved', or '.issued' for a JWT), and what is read at each scrape. */
const ISSUED_KINDS = ['access_token', 'client_credentials', 'refresh_token', 'authorization_code', 'exchanged_access_token'] as const;

function countOAuthAndHashing(metrics: Metrics, core: OnlineCore, oauth: OAuthParts): void {
  // (The provider is an EventEmitter; its types list each event name on its own.)
  const provider = oauth.provider as unknown as NodeJS.EventEmitter;
  for (const kind of ISSUED_KINDS) {
    for (const event of ['saved', 'issued']) provider.on(`${kind}.${event}`, () => metrics.tokenIssued(kind));
  }
  metrics.readIntrospectionCache(() => oauth.verifier.stats());
  metrics.readHashing(() => core.passwordHashing.stats());
}

/** The one password sign-in, its outcomes counted by channel (a saturated hasher as `busy`). */
function countedSignIn(signIn: PasswordSignIn, metrics: Metrics): PasswordSignIn {
  return {
    ...signIn,
    async attempt(login, password, context) {
      try {
        const result = await signIn.attempt(login, password, context);
        metrics.signInAttempted(context.via, result.status);
        return result;
      } catch (error) {
        if (error instanceof HashingBusyError) metrics.signInAttempted(context.via, 'busy');
        throw error;
      }
    },
  };
}

/**
 * A single process serves its metrics on a listener of its own; a worker leaves them to its
 * supervisor, which asks every worker at each scrape and adds their figures up (workers.ts).
 */
async function serveMetrics(metrics: Metrics, config: Config, logger: Logger): Promise<MetricsListener | undefined> {
  if (cluster.isWorker) {
    // An AggregatorRegistry made in a worker is what answers the supervisor's requests (prom-client
    // listens for them from its constructor on); it answers with this process's registry.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([metrics.registry]);
    return undefined;
  }
  const { registry } = metrics;
  const read = async () => ({ text: await registry.metrics(), contentType: registry.contentType });
  return startMetricsListener(read, config.metrics.host, config.metrics.port!, (error) => logger.error({ err: error }, 'could not read the metrics'));
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
