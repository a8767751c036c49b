import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createAccountService, type AccountService } from './accounts/account-service.ts';
import { createPasswordHasher } from './accounts/password-hasher.ts';
import { createUserRepository } from './accounts/user-repository.ts';
import { createApp } from './app.ts';
import { availableParallelism } from 'node:os';
import { createBoundedPasswordHasher } from './accounts/bounded-hasher.ts';
import { createEventLoopGauge } from './accounts/event-loop-gauge.ts';
import { createAuditLog, type AuditLog } from './audit/audit-log.ts';
import { createApiSessionStore, type ApiSessionStore } from './sessions/api-session-store.ts';
import { createLoginLimiter } from './sessions/login-limiter.ts';
import { apiRateLimit, createSessionRoutes } from './sessions/session-routes.ts';
import type { Config } from './config/schema.ts';
import type { Database } from './store/database.ts';
import type { EphemeralStore } from './store/ephemeral-store.ts';
import { migrate } from './store/migrations.ts';
import { openDatabase, openEphemeralStore } from './store/open-stores.ts';
import { resolveSecrets } from './config/secrets.ts';
import { createClientService, type ClientService } from './oauth/client-service.ts';
import { createGrantCache, createOidcAdapterFactory, findOidcToken } from './oauth/oidc-adapter.ts';
import { createOAuthRoutes } from './oauth/oauth-routes.ts';
import { createOidcProvider } from './oauth/provider.ts';
import { createSigningKeyStore } from './oauth/signing-keys.ts';
import { createPersonalTokenService, type PersonalTokenService } from './tokens/personal-token-service.ts';
import { createTokenApiRoutes } from './tokens/token-api-routes.ts';
import type { JSONWebKeySet } from 'jose';
import { createCredentialVerifier } from './introspection/credential-verifier.ts';
import { createCachedCredentialVerifier, type CachedCredentialVerifier, type CredentialCacheStats } from './introspection/credential-cache.ts';
import { createIntrospectionCallers, type CallerMetadata, type IntrospectionCallers } from './introspection/introspection-callers.ts';
import { createIntrospectionEndpoint } from './introspection/introspection-endpoint.ts';
import { withFastRoutes, type RawHandler } from './http/raw-http.ts';
import { createTokenEndpoint } from './oauth/token-endpoint.ts';
import { createTokenRequestCheck } from './oauth/oauth-request-guard.ts';
import { createInvalidations, invalidationTarget, type Invalidations } from './introspection/invalidations.ts';
import type { Subscription } from './store/ephemeral-store.ts';
import { OIDC_ROUTES } from './oauth/provider.ts';
import { createClientMetadataCache } from './oauth/client-metadata-cache.ts';
import { createUserCache } from './accounts/user-cache.ts';
import { lowerHashingPriority } from './accounts/hashing-priority.ts';
import { createForwardAuthRoutes } from './introspection/forward-auth-routes.ts';
import { createCallerAuthenticator } from './web/caller.ts';
import { createWebRoutes } from './web/web-routes.ts';

/** The durable side of Tessera, shared by the server and the admin CLI. */
export interface Core {
  config: Config;
  logger: Logger;
  database: Database;
  audit: AuditLog;
  accounts: AccountService;
  clients: ClientService;
  personalTokens: PersonalTokenService;
  /** API login sessions; present when the core was opened with an ephemeral store. */
  sessions?: ApiSessionStore;
  /** Cache invalidations to every node; present when the core was opened with an ephemeral store. */
  invalidations?: Invalidations;
}

/** Opens the database, applies pending migrations (unless told not to) and builds the services on it. */
export interface OpenCoreOptions {
  /** Apply pending migrations (default true). */
  migrate?: boolean;
  /**
   * Where OAuth tokens live: given, deleting a client or rotating its secret also revokes every
   * token it holds there.
   */
  ephemeral?: EphemeralStore;
  /** Milliseconds since the epoch for session expiry decisions; tests inject one. */
  clock?: () => number;
}

export async function openCore(config: Config, logger: Logger, options: OpenCoreOptions = {}): Promise<Core> {
  const database = await openDatabase(config, logger);
  if (options.migrate !== false) {
    try {
      const report = await migrate(database);
      if (report.applied.length) logger.info({ applied: report.applied.map((m) => `${m.version}_${m.name}`) }, 'database migrated');
    } catch (error) {
      await database.close();
      throw error;
    }
  }
  const audit = createAuditLog(database);
  const invalidations = options.ephemeral && createInvalidations(options.ephemeral, logger);
  const invalidate = invalidations ? { invalidate: invalidations.publish } : {};
  const sessions = options.ephemeral
    ? createApiSessionStore(options.ephemeral, {
        idleTimeoutSeconds: config.sessions.idleTimeoutSeconds,
        absoluteTimeoutSeconds: config.sessions.absoluteTimeoutSeconds,
        ...(options.clock ? { clock: options.clock } : {}),
        ...invalidate,
      })
    : undefined;
  // A new password or a disabled account ends every API session of the user.
  const endSessions = async (user: { id: string }) => {
    await sessions?.endAllForUser(user.id);
  };
  const accounts = createAccountService({
    users: createUserRepository(database),
    audit,
    listeners: [
      { passwordChanged: endSessions, disabled: endSessions },
      // Cached introspection answers about the user's credentials go, on every node.
      { changed: async (user) => invalidations?.publish(invalidationTarget.user(user.id)) },
    ],
    hasher: createBoundedPasswordHasher(createPasswordHasher(config.passwords.argon2), {
      // One core is left to the event loop: hashing on every core would starve the token endpoints.
      concurrency: config.passwords.hashing.concurrency ?? Math.max(1, availableParallelism() - 1),
      maxQueue: config.passwords.hashing.maxQueue,
      deadlineMs: config.passwords.hashing.deadlineMs,
    }, {
      // Logins take what the API traffic leaves: while the event loop is busy, hashing is paced.
      busyShare: config.passwords.hashing.busyCorePercent / 100,
      gauge: createEventLoopGauge(),
    }),
    scopeCatalog: config.scopes,
    defaultScopes: config.accounts.defaultScopes,
    passwordMinLength: config.passwords.minLength,
  });
  const tokens = options.ephemeral && createOidcAdapterFactory(options.ephemeral, invalidate)('AccessToken');
  const endClientTokens = async (client: { clientId: string }) => {
    await tokens?.revokeByClientId(client.clientId);
  };
  const clients = createClientService({
    database,
    audit,
    listeners: [
      { deleted: endClientTokens, secretRotated: endClientTokens },
      // Every node's cached metadata of the client goes (a new one may be cached as unknown).
      { created: async (client) => invalidations?.publish(invalidationTarget.client(client.clientId)) },
    ],
    declared: config.clients,
    scopeCatalog: config.scopes,
    resources: config.oauth.resources,
    defaultResource: config.oauth.defaultResource,
  });
  const personalTokens = createPersonalTokenService({
    database,
    audit,
    scopeCatalog: config.scopes,
    maxExpiryDays: config.tokens.maxExpiryDays,
    allowNoExpiry: config.tokens.allowNoExpiry,
    ...(options.clock ? { clock: options.clock } : {}),
    ...invalidate,
  });
  return { config, logger, database, audit, accounts, clients, personalTokens, ...(sessions ? { sessions } : {}), ...(invalidations ? { invalidations } : {}) };
}

export interface RunningTessera {
  server: Server;
  /** The URL it listens on (useful with port 0). */
  url: string;
  core: Core;
  ephemeral: EphemeralStore;
  /** The introspection cache's figures (entries, hits, misses, whether it serves from memory). */
  introspectionCache: { stats(): CredentialCacheStats };
  /** Stops accepting, drains in-flight requests (up to http.shutdownGraceMs), then closes the stores. */
  stop(): Promise<void>;
}

/** Wires every real dependency, creates the first admin if needed, and listens. */
export async function startTessera(config: Config, logger: Logger, options: { clock?: () => number } = {}): Promise<RunningTessera> {
  const ephemeral = await openEphemeralStore(config, logger);
  let core: Core;
  try {
    core = await openCore(config, logger, { ephemeral, ...options });
  } catch (error) {
    await ephemeral.close();
    throw error;
  }

  const admin = await core.accounts.ensureInitialAdmin(config.admin.username, config.admin.password);
  if (admin?.generatedPassword) {
    // Printed once, on purpose, to the console rather than the log stream: it is a secret.
    process.stderr.write(
      `\n  Created the first account "${admin.user.username}" with the password:\n\n      ${admin.generatedPassword}\n\n` +
        `  It is shown only now. Change it with: npx tessera user passwd ${admin.user.username}\n\n`,
    );
  } else if (admin) {
    logger.info({ username: admin.user.username }, 'created the first account with the configured TESSERA_ADMIN_PASSWORD');
  }

  const reniced = await lowerHashingPriority(config.passwords.hashing.niceness, logger);
  if (reniced) logger.debug({ threads: reniced, niceness: config.passwords.hashing.niceness }, 'lowered the priority of the password-hashing threads');

  // Opened with the ephemeral store, the core always has its session store.
  const sessions = core.sessions!;
  const loginLimiter = createLoginLimiter(ephemeral, config.loginLimits);
  let oauthRoutes;
  let csrfKey: string;
  // Opened with the ephemeral store, the core always has its invalidations.
  const invalidations = core.invalidations!;
  let verifier: CachedCredentialVerifier;
  let introspectionCallers: IntrospectionCallers;
  let tokenEndpoint: (trustsProxy: (address: string) => boolean) => RawHandler;
  const subscriptions: Subscription[] = [];
  try {
    const secrets = await resolveSecrets(config, logger);
    csrfKey = secrets.cookieKeys[0]!;
    const signingKeys = createSigningKeyStore({ database: core.database, secret: secrets.keyEncryptionSecret, algorithm: config.oauth.signingAlgorithm });
    const { kid, created } = await signingKeys.ensureSigningKey();
    if (created) logger.info({ kid }, 'generated the first signing key');
    // (Real time: oidc-provider stamps what it saves with the real time too.)
    const grants = createGrantCache(ephemeral);
    const adapterFactory = createOidcAdapterFactory(ephemeral, { invalidate: invalidations.publish, grants });
    const clientMetadata = createClientMetadataCache((clientId) => core.clients.findOidcMetadata(clientId), options.clock ? { clock: options.clock } : {});
    const users = createUserCache((id) => core.accounts.findUserById(id), options.clock ? { clock: options.clock } : {});
    verifier = createCachedCredentialVerifier(
      createCredentialVerifier({
        config,
        accounts: users,
        clients: { findOidcMetadata: (clientId) => clientMetadata.peekOidcMetadata(clientId) },
        sessions,
        personalTokens: core.personalTokens,
        oidcModel: adapterFactory,
        findOidcToken: (value, models) => findOidcToken(ephemeral, value, models),
        publicJwks: (await signingKeys.loadPublicJwks()) as JSONWebKeySet,
        ...(options.clock ? { clock: options.clock } : {}),
      }),
      {
        maxEntries: config.introspection.cacheMaxEntries,
        activeTtlMs: config.introspection.cacheTtlSeconds * 1000,
        inactiveTtlMs: config.introspection.inactiveCacheTtlSeconds * 1000,
        ...(options.clock ? { clock: options.clock } : {}),
      },
    );
    introspectionCallers = createIntrospectionCallers({
      issuer: config.issuer,
      endpointUrl: new URL(OIDC_ROUTES.introspection, config.issuer).href,
      tokenEndpointUrl: new URL(OIDC_ROUTES.token, config.issuer).href,
      findClient: async (clientId) => (await clientMetadata.peekOidcMetadata(clientId)) as CallerMetadata | undefined,
      findClientNow: (clientId) => clientMetadata.peekOidcMetadataNow(clientId) as CallerMetadata | null | undefined,
      ephemeral,
      ...(options.clock ? { clock: options.clock } : {}),
    });
    // Caches serve from memory only while they hear every invalidation.
    for (const subscriber of [verifier, clientMetadata, users, grants]) {
      subscriptions.push(await invalidations.subscribe(subscriber));
      subscriber.channelState('up');
    }
    const { provider, devicePolls, directGrants } = createOidcProvider({
      config,
      logger,
      accounts: users,
      clients: clientMetadata,
      adapterFactory,
      jwks: await signingKeys.loadJwks(),
      cookieKeys: secrets.cookieKeys,
      ephemeral,
    });
    const refreshTokens = adapterFactory('RefreshToken');
    oauthRoutes = createOAuthRoutes({
      config,
      provider,
      devicePolls,
      accounts: core.accounts,
      ephemeral,
      csrfKey,
      limiter: loginLimiter,
    });
    tokenEndpoint = (trustsProxy) =>
      createTokenEndpoint({
        issuer: config.issuer,
        logger,
        provider,
        trustsProxy,
        directGrants,
        check: createTokenRequestCheck({
          devicePolls,
          clientScopes: async (clientId) => String((await clientMetadata.peekOidcMetadata(clientId))?.scope ?? '').split(' ').filter(Boolean),
          refreshTokenUserScopes: async (value) => {
            const token = await refreshTokens.prefetch(value);
            if (!token || typeof token.accountId !== 'string') return null;
            const user = await users.peekUser(token.accountId);
            if (!user) return null;
            return { granted: String(token.scope ?? '').split(' ').filter(Boolean), allowed: [...user.allowedScopes, 'openid', 'offline_access'] };
          },
        }),
      });
  } catch (error) {
    await Promise.allSettled(subscriptions.map((s) => s.close()));
    await Promise.allSettled([ephemeral.close(), core.database.close()]);
    throw error;
  }

  const callers = createCallerAuthenticator({ config, accounts: core.accounts, sessions, personalTokens: core.personalTokens, csrfKey });
  const apiRoutes = [
    { paths: ['/api', '/users', '/logout'], router: apiRateLimit(config, ephemeral) },
    {
      router: createWebRoutes({ config, accounts: core.accounts, sessions, personalTokens: core.personalTokens, audit: core.audit, limiter: loginLimiter, callers }),
    },
    { router: createTokenApiRoutes({ personalTokens: core.personalTokens, callers, verifier, findUserById: (id) => core.accounts.findUserById(id) }) },
    { router: createForwardAuthRoutes({ config, verifier, findUserByLogin: (login) => core.accounts.findUserByLogin(login) }) },
    {
      router: createSessionRoutes({ config, accounts: core.accounts, sessions, limiter: loginLimiter, audit: core.audit }),
    },
  ];
  const app = createApp({ config, logger, database: core.database, ephemeral, oauthRoutes, apiRoutes });
  const trustProxy = app.get('trust proxy fn') as (address: string, hop: number) => boolean;
  const trustsProxy = (address: string) => trustProxy(address, 0);
  const introspection = createIntrospectionEndpoint({ issuer: config.issuer, logger, callers: introspectionCallers, verifier, trustsProxy });
  // The two hottest endpoints run on node:http ahead of express (raw-http.ts).
  const server = createServer(withFastRoutes({ [OIDC_ROUTES.introspection]: introspection, [OIDC_ROUTES.token]: tokenEndpoint(trustsProxy) }, app));
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.http.port, config.http.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
  logger.info({ url, issuer: config.issuer }, 'Tessera is listening');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.http.shutdownGraceMs);
      });
      if ((await Promise.race([closed, grace])) === 'timeout') {
        logger.warn({ graceMs: config.http.shutdownGraceMs }, 'requests still in flight after the grace period; closing their connections');
        server.closeAllConnections();
        await closed;
      }
      clearTimeout(timer);
      await Promise.allSettled(subscriptions.map((s) => s.close()));
      await Promise.allSettled([ephemeral.close(), core.database.close()]);
      logger.info('Tessera stopped');
    })());

  return { server, url, core, ephemeral, introspectionCache: { stats: () => verifier.stats() }, stop };
}
