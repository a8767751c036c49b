import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { createAccountService, type AccountService, type EndedSignIns } from './accounts/account-service.ts';
import type { User } from './accounts/user.ts';
import { createBoundedPasswordHasher, type HashingStats } from './accounts/hashing/bounded-hasher.ts';
import { createEventLoopGauge } from './accounts/hashing/event-loop-gauge.ts';
import { createPasswordHasher } from './accounts/hashing/password-hasher.ts';
import { createUserRepository } from './accounts/user-repository.ts';
import { createAuditLog, type AuditLog } from './audit/audit-log.ts';
import { createAuditQuery, type AuditQuery } from './audit/audit-query.ts';
import { createInvalidations, invalidationTarget, type Invalidations } from './cache/invalidations.ts';
import { createClientService, type ClientService } from './clients/client-service.ts';
import { accountScopeCatalog } from './config/admin-scope.ts';
import type { Config } from './config/schema.ts';
import { createGrantCache, type GrantCache } from './oauth/adapter/grant-cache.ts';
import { createJwtRevocations, type JwtRevocations } from './oauth/adapter/jwt-revocations.ts';
import { createOidcAdapterFactory, type OidcAdapter } from './oauth/adapter/oidc-adapter.ts';
import { createSigningKeyService, type SigningKeyService } from './oauth/signing-key-service.ts';
import { createSigningKeyStore } from './oauth/signing-keys.ts';
import { resolveSecrets } from './config/secrets.ts';
import { createPersonalTokenService, type PersonalTokenService } from './personal-tokens/personal-token-service.ts';
import { createApiSessionStore, type ApiSessionStore } from './sessions/api-session-store.ts';
import { createLoginLimiter, type LoginLimiter } from './sessions/login-limiter.ts';
import { createPasswordSignIn, type PasswordSignIn } from './sessions/password-sign-in.ts';
import { createFlowStore } from './identity-providers/flow-store.ts';
import { createIdentityProviderService, type IdentityProviderService } from './identity-providers/identity-provider-service.ts';
import { createIdentityRepository } from './identity-providers/identity-repository.ts';
import { createSecondFactorLimiter } from './second-factors/second-factor-limiter.ts';
import { createSecondFactorRepository } from './second-factors/second-factor-repository.ts';
import { createSecondFactorService, type SecondFactorService } from './second-factors/second-factor-service.ts';
import { createPendingSignIns, type PendingSignIns } from './second-factors/pending-sign-in.ts';
import { createSecretBox } from './second-factors/secret-box.ts';
import { createSecondFactorReset, type SecondFactorReset } from './second-factors/second-factor-reset.ts';
import { createPasskeyRepository } from './second-factors/passkey-repository.ts';
import { createPasskeyService, type PasskeyService } from './second-factors/passkey-service.ts';
import type { EphemeralStore } from './store/ephemeral/ephemeral-store.ts';
import { openDatabase } from './store/open-stores.ts';
import type { Database } from './store/sql/database.ts';
import type { StoreObserver } from './store/store-observer.ts';
import { migrate } from './store/sql/migrations.ts';

/** The durable side of Tessera, shared by the server and the admin CLI. */
export interface Core {
  config: Config;
  logger: Logger;
  database: Database;
  audit: AuditLog;
  /** Reading the audit log: filters, cursor pages, JSON-lines export (tessera audit, the admin API). */
  auditQuery: AuditQuery;
  accounts: AccountService;
  clients: ClientService;
  personalTokens: PersonalTokenService;
  /** The password-hashing queue's figures now (for the metrics). */
  passwordHashing: { stats(): HashingStats };
  /** Listing and rotating the signing keys (a rotation is announced to every node through Redis). */
  signingKeys: SigningKeyService;
  /** Removing every second factor of an account (`tessera user reset-second-factor`). */
  secondFactorReset: SecondFactorReset;
}

/** What a core opened with the ephemeral store adds: sessions, OAuth records, invalidations. */
export interface OnlineCore extends Core {
  ephemeral: EphemeralStore;
  sessions: ApiSessionStore;
  invalidations: Invalidations;
  /** oidc-provider's storage, one factory for every model (oidc-adapter.ts). */
  oidcAdapters: (modelName: string) => OidcAdapter;
  /** The grants oidc-provider reads on every refresh, kept in memory (exact through invalidations). */
  grants: GrantCache;
  /** Revoked JWT access tokens that have no grant to end with them. */
  jwtRevocations: JwtRevocations;
  /** Sign-in throttling: failures and lockouts per account (`tessera user unlock` lifts them). */
  loginLimiter: LoginLimiter;
  /** Password sign-in, the same for every channel (API, browser, OAuth), on loginLimiter. */
  signIn: PasswordSignIn;
  /** Sign-in through upstream identity providers, and the accounts' links to them. */
  identityProviders: IdentityProviderService;
  /** Second factors: enrolment, removal, the check at sign-in (docs/second-factors.md). */
  secondFactors: SecondFactorService;
  /** Sign-ins waiting for their second step (browser channels). */
  pendingSignIns: PendingSignIns;
  /** Passkeys (WebAuthn) as second factors. */
  passkeys: PasskeyService;
}

export interface OpenCoreOptions {
  /** Apply pending migrations (default true). */
  migrate?: boolean;
  /** Milliseconds since the epoch for expiry decisions; tests inject one. */
  clock?: () => number;
  /** Told of what the metrics count: store commands, credentials ended before their time. */
  observers?: CoreObservers;
}

export interface CoreObservers {
  /** Each command to the database (the ephemeral store is opened, and observed, by the caller). */
  storeCommand?: StoreObserver;
  /** Each credential ended before its time, by kind (session, personal_access_token, access_token, …). */
  revoked?: (kind: string) => void;
}

/** The services that need the ephemeral store, built on it. */
function openOnline(config: Config, logger: Logger, ephemeral: EphemeralStore, clock: (() => number) | undefined, revoked: CoreObservers['revoked']) {
  const invalidations = createInvalidations(ephemeral, logger);
  const sessions = createApiSessionStore(ephemeral, {
    idleTimeoutSeconds: config.sessions.idleTimeoutSeconds,
    absoluteTimeoutSeconds: config.sessions.absoluteTimeoutSeconds,
    invalidate: invalidations.publish,
    ...(clock ? { clock } : {}),
    ...(revoked ? { onEnded: () => revoked('session') } : {}),
  });
  // (Real time: oidc-provider stamps what it saves with the real time too.)
  const grants = createGrantCache(ephemeral);
  const oidcAdapters = createOidcAdapterFactory(ephemeral, { invalidate: invalidations.publish, grants, ...(revoked ? { onRevoked: revoked } : {}) });
  const jwtRevocations = createJwtRevocations(ephemeral, invalidations.publish, revoked && (() => revoked('jwt_access_token')));
  const loginLimiter = createLoginLimiter(ephemeral, config.loginLimits);
  return { ephemeral, invalidations, sessions, grants, oidcAdapters, jwtRevocations, loginLimiter };
}

/** Second factors: TOTP keys sealed under TESSERA_SECOND_FACTOR_KEYS, else a key derived from TESSERA_KEY_SECRET. */
function openSecondFactors(config: Config, logger: Logger, database: Database, audit: AuditLog, ephemeral: EphemeralStore, clock: (() => number) | undefined) {
  const limiter = createSecondFactorLimiter(ephemeral, { failures: config.secondFactor.failuresPerAccount, windowSeconds: config.secondFactor.failureWindowSeconds });
  const passkeys = createPasskeyService({
    repository: createPasskeyRepository(database),
    ephemeral,
    limiter,
    audit,
    issuer: config.issuer,
    rpName: new URL(config.issuer).host,
    challengeTtlSeconds: config.secondFactor.pendingSeconds,
  });
  const secondFactors = createSecondFactorService({
    repository: createSecondFactorRepository(database),
    box: async () => createSecretBox([...(config.secrets.secondFactorKeys ?? []), (await resolveSecrets(config, logger)).keyEncryptionSecret]),
    limiter,
    hasOtherFactor: (userId) => passkeys.hasAny(userId),
    audit,
    issuerLabel: new URL(config.issuer).host,
    requiredForScopes: config.secondFactor.requiredForScopes,
    ...(clock ? { clock } : {}),
  });
  const pendingSignIns = createPendingSignIns(ephemeral, { ttlSeconds: config.secondFactor.pendingSeconds, ...(clock ? { clock } : {}) });
  return { secondFactors, pendingSignIns, passkeys };
}

async function openMigratedDatabase(config: Config, logger: Logger, apply: boolean, observe: StoreObserver | undefined): Promise<Database> {
  const database = await openDatabase(config, logger, observe ? { observe } : {});
  if (!apply) return database;
  try {
    const report = await migrate(database);
    if (report.applied.length) logger.info({ applied: report.applied.map((m) => `${m.version}_${m.name}`) }, 'database migrated');
    return database;
  } catch (error) {
    await database.close();
    throw error;
  }
}

/** Every API and browser session of the user, and every OAuth login with its provider sessions. */
async function endSignIns(online: ReturnType<typeof openOnline>, user: User): Promise<EndedSignIns> {
  const [apiSessions, oauth] = await Promise.all([online.sessions.endAllForUser(user.id), online.oidcAdapters('Grant').revokeByAccountId(user.id)]);
  return { sessions: apiSessions + oauth.sessions, logins: oauth.grants };
}

function createAccounts(config: Config, database: Database, audit: AuditLog, online: ReturnType<typeof openOnline> | undefined): { accounts: AccountService; hashing: { stats(): HashingStats } } {
  const hashing = config.passwords.hashing;
  const endSessions = async (user: { id: string }) => {
    await online?.sessions.endAllForUser(user.id);
  };
  const hasher = createBoundedPasswordHasher(
    createPasswordHasher(config.passwords.argon2),
    // One core is left to the event loop: hashing on every core would starve the token endpoints.
    { concurrency: hashing.concurrency ?? Math.max(1, availableParallelism() - 1), maxQueue: hashing.maxQueue, deadlineMs: hashing.deadlineMs },
    // Logins take what the API traffic leaves: while the event loop is busy, hashing is paced.
    { busyShare: hashing.busyCorePercent / 100, gauge: createEventLoopGauge() },
  );
  const accounts = createAccountService({
    users: createUserRepository(database),
    audit,
    listeners: online
      ? [
          // A new password or a disabled account ends every API session of the user.
          { passwordChanged: endSessions, disabled: endSessions },
          // Cached introspection answers about the user's credentials go, on every node.
          { changed: (user) => online.invalidations.publish(invalidationTarget.user(user.id)) },
        ]
      : [],
    ...(online ? { endSignIns: (user: User) => endSignIns(online, user) } : {}),
    hasher,
    scopeCatalog: accountScopeCatalog(config.scopes),
    pathScopes: config.pathScopes,
    defaultScopes: config.accounts.defaultScopes,
    passwordMinLength: config.passwords.minLength,
  });
  return { accounts, hashing: hasher };
}

function createClients(config: Config, database: Database, audit: AuditLog, online: ReturnType<typeof openOnline> | undefined): ClientService {
  const accessTokens = online?.oidcAdapters('AccessToken');
  const endClientTokens = async (client: { clientId: string }) => {
    await accessTokens?.revokeByClientId(client.clientId);
  };
  return createClientService({
    database,
    audit,
    listeners: [
      { deleted: endClientTokens, secretRotated: endClientTokens },
      // Every node's cached metadata of the client goes (a new one may be cached as unknown).
      { created: async (client) => online?.invalidations.publish(invalidationTarget.client(client.clientId)) },
      // What it may do changed (introspection): its cached metadata goes, on every node.
      { changed: async (client) => online?.invalidations.publish(invalidationTarget.client(client.clientId)) },
    ],
    declared: config.clients,
    scopeCatalog: config.scopes,
    pathScopes: config.pathScopes,
    resources: config.oauth.resources,
    signingAlgorithm: config.oauth.signingAlgorithm,
    defaultResource: config.oauth.defaultResource,
  });
}

/**
 * Opens the database, applies pending migrations (unless told not to) and builds the services on
 * it. Given the ephemeral store, the core also has sessions and OAuth records: deleting a client
 * or rotating its secret then revokes its tokens, and changes reach every node's caches.
 */
export async function openCore(config: Config, logger: Logger, options: OpenCoreOptions & { ephemeral: EphemeralStore }): Promise<OnlineCore>;
export async function openCore(config: Config, logger: Logger, options?: OpenCoreOptions & { ephemeral?: EphemeralStore }): Promise<Core | OnlineCore>;
export async function openCore(config: Config, logger: Logger, options: OpenCoreOptions & { ephemeral?: EphemeralStore } = {}): Promise<Core | OnlineCore> {
  const { storeCommand, revoked } = options.observers ?? {};
  const database = await openMigratedDatabase(config, logger, options.migrate !== false, storeCommand);
  const audit = createAuditLog(database, { logger });
  const online = options.ephemeral && openOnline(config, logger, options.ephemeral, options.clock, revoked);
  const { accounts, hashing } = createAccounts(config, database, audit, online);
  const core: Core = {
    config,
    logger,
    database,
    audit,
    auditQuery: createAuditQuery(database),
    secondFactorReset: createSecondFactorReset({ database, audit }),
    accounts,
    passwordHashing: hashing,
    clients: createClients(config, database, audit, online),
    signingKeys: createSigningKeyService({
      openStore: async () => createSigningKeyStore({ database, secret: (await resolveSecrets(config, logger)).keyEncryptionSecret, algorithm: config.oauth.signingAlgorithm }),
      audit,
      config,
      ...(online?.ephemeral.kind === 'redis' ? { announce: () => online.invalidations.publish(invalidationTarget.signingKeys()) } : {}),
    }),
    personalTokens: createPersonalTokenService({
      database,
      audit,
      scopeCatalog: config.scopes,
      pathScopes: config.pathScopes,
      maxExpiryDays: config.tokens.maxExpiryDays,
      allowNoExpiry: config.tokens.allowNoExpiry,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(online ? { invalidate: online.invalidations.publish } : {}),
      ...(revoked ? { onRevoked: () => revoked('personal_access_token') } : {}),
    }),
  };
  if (!online) return core;
  const signIn = createPasswordSignIn({ accounts: core.accounts, limiter: online.loginLimiter, audit });
  const identityProviders = createIdentityProviderService({ config, accounts: core.accounts, identities: createIdentityRepository(database), flows: createFlowStore(online.ephemeral), audit });
  return { ...core, ...online, signIn, identityProviders, ...openSecondFactors(config, logger, database, audit, online.ephemeral, options.clock) };
}
