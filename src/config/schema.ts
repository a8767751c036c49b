// The configuration's schema: what makes a value valid. Parsed once, at boot; the defaults are in
// config/default.json and every key is documented in docs/configuration.md.
import { z } from 'zod';
import { ADMIN_SCOPE } from './admin-scope.ts';
import { brandingSchema } from './branding-schema.ts';
import { clientJwksSchema } from './client-jwks.ts';
import { identityProvidersSchema } from './identity-providers.ts';
import { readScope } from '../shared/path-scopes.ts';
import { EXCHANGING_KINDS, tokenExchangePolicyProblems, tokenExchangePolicySchema } from './token-exchange-policy.ts';

export { CLIENT_JWKS_MAX_KEYS, CLIENT_RSA_MIN_BITS, clientJwksSchema, jwkThumbprint, type ClientJwks, type ClientPublicJwk } from './client-jwks.ts';

/** A URL string whose scheme is one of `protocols`. */
const urlWith = (protocols: string[]) =>
  z.string().refine((value) => {
    try {
      return protocols.includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` });

/** A client identifier: what people type on a command line and read in logs. */
export const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * What a client is for. Each kind fixes its grants and how it authenticates:
 * - device: a public command-line tool (device grant + refresh, no client authentication, PKCE allowed)
 * - service: a confidential backend (client credentials, client_secret_basic/post)
 * - resource_server: an API that introspects and revokes tokens (client_secret_basic/post)
 * - web: a web application (authorization code with PKCE S256 + refresh, confidential)
 * A confidential client registered with public keys (jwks) uses private_key_jwt instead of a secret.
 */
export const CLIENT_KINDS = ['device', 'service', 'resource_server', 'web'] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

/** A client declared in configuration (infrastructure as code); its secret only as a SHA-256 digest. */
export const declaredClientSchema = z.object({
  clientId: z.string().regex(CLIENT_ID, { message: 'letters, digits and . _ : -, at most 128' }),
  name: z.string().min(1).max(200),
  kind: z.enum(CLIENT_KINDS),
  /** Hex SHA-256 of the client secret (confidential kinds). `printf %s "$SECRET" | sha256sum`. */
  secretSha256: z.string().regex(/^[0-9a-f]{64}$/, { message: 'must be 64 lower-case hex digits (sha256sum of the secret)' }).optional(),
  /** Instead of secretSha256 (confidential kinds): the PUBLIC keys of a client using private_key_jwt. */
  jwks: clientJwksSchema.optional(),
  redirectUris: z.array(urlWith(['http:', 'https:'])).default([]),
  /** Scopes the client may obtain; tokens also never exceed the user's allowed scopes. */
  scopes: z.array(z.string()).min(1),
  defaultResource: z.string().min(1).optional(),
  accessTokenTtlSeconds: z.number().int().min(60).max(86400).optional(),
  /** A service client granted introspection (resource servers have it anyway). */
  mayIntrospect: z.boolean().optional(),
  /** RFC 9701: checked against oauth.signingAlgorithm, the only one signed answers use (introspectionMetadataProblems). */
  introspectionSignedResponseAlg: z.string().optional(),
  /** RFC 9701: refused, Tessera encrypts no introspection answer; named so that it is not silently dropped. */
  introspectionEncryptedResponseAlg: z.unknown().optional(),
  introspectionEncryptedResponseEnc: z.unknown().optional(),
  /** May exchange a person's credentials for narrower tokens (RFC 8693; docs/token-exchange.md). */
  tokenExchange: tokenExchangePolicySchema.optional(),
});
export type DeclaredClient = z.infer<typeof declaredClientSchema>;

/** RFC 9701 client metadata as a client states it (in the configuration, or to the admin API). */
export interface IntrospectionResponseMetadata {
  introspectionSignedResponseAlg?: string | null | undefined;
  introspectionEncryptedResponseAlg?: unknown;
  introspectionEncryptedResponseEnc?: unknown;
}

/**
 * What is wrong with a client's RFC 9701 metadata, by field: signed answers use the algorithm of
 * the key that signs tokens (discovery's introspection_signing_alg_values_supported names only
 * it), so a client may state that one and no other; no answer is encrypted
 * (docs/resource-servers.md#signed-introspection-answers).
 */
export function introspectionMetadataProblems(client: IntrospectionResponseMetadata, signingAlgorithm: string): { field: keyof IntrospectionResponseMetadata; message: string }[] {
  const problems: { field: keyof IntrospectionResponseMetadata; message: string }[] = [];
  const alg = client.introspectionSignedResponseAlg;
  if (alg !== undefined && alg !== null && alg !== signingAlgorithm) {
    problems.push({ field: 'introspectionSignedResponseAlg', message: `Tessera signs introspection answers with ${signingAlgorithm} only (oauth.signingAlgorithm), not "${alg}"` });
  }
  for (const field of ['introspectionEncryptedResponseAlg', 'introspectionEncryptedResponseEnc'] as const) {
    if (client[field] !== undefined && client[field] !== null) {
      problems.push({ field, message: 'Tessera does not encrypt introspection answers: they are signed, and TLS protects them on the way; leave this out' });
    }
  }
  return problems;
}

/** A scope name: what RFC 6749 allows, narrowed to a readable lower-case alphabet. */
export const SCOPE_NAME = /^[a-z][a-z0-9:_.-]{0,63}$/;

const positiveInt = z.coerce.number().int().positive();

/**
 * The token profiles a resource server's JWT access tokens follow (docs/wlcg-tokens.md): RFC 9068,
 * the WLCG Common JWT Profile 1.0, or SciTokens 2.0.
 */
export const TOKEN_PROFILES = ['rfc9068', 'wlcg', 'scitokens'] as const;
export type TokenProfile = (typeof TOKEN_PROFILES)[number];

/** The algorithms the WLCG and SciTokens profiles' verifiers accept (scitokens-cpp: RS256 and ES256). */
const PROFILE_ALGORITHMS = ['RS256', 'ES256'];

/**
 * An entry of the scope catalog: its description, or `{ description, paths: true }` for a scope
 * people may narrow to a path ("deposit:write:/records/123"; docs/configuration.md#path-scopes).
 */
const scopeEntrySchema = z.union([
  z.string().min(1),
  z.object({ description: z.string().min(1), paths: z.boolean().default(false) }).strict(),
]);

/** Whether `scope` is in the catalog: a name of it, or a path-scoped name with a valid path. */
/** The names of a catalog whose entries take paths (`{ paths: true }`). */
function pathScopedNames(catalog: Record<string, z.output<typeof scopeEntrySchema>>): Set<string> {
  return new Set(Object.entries(catalog).filter(([, entry]) => typeof entry === 'object' && entry.paths).map(([name]) => name));
}

function catalogProblem(scope: string, catalog: Record<string, z.output<typeof scopeEntrySchema>>): string | null {
  const reading = readScope(scope, pathScopedNames(catalog));
  if (reading.kind === 'invalid') return reading.problem;
  if (reading.kind === 'path') return null;
  return scope in catalog ? null : `"${scope}" is not in the scope catalog`;
}

const validPort = (port: string | undefined) => port !== undefined && Number(port) >= 1 && Number(port) <= 65535;

/** host:port, the host a name, an IPv4 address or a bracketed IPv6 address. */
export const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
/** A Redis address as the settings take it (REDIS_SENTINELS, REDIS_CLUSTER_NODES). */
const hostPort = z.string().refine((value) => validPort(HOST_PORT.exec(value)?.[2]), { message: 'each must be host:port (a port from 1 to 65535)' });

/** Whether the connections to Redis itself (not to the sentinels) use TLS: REDIS_TLS, or a rediss:// URL. */
export function redisUsesTls(redis: { url: string | null; tls: { enabled: boolean } }): boolean {
  if (redis.tls.enabled) return true;
  try {
    return redis.url !== null && new URL(redis.url).protocol === 'rediss:';
  } catch {
    return false;
  }
}

/** The whole configuration. */
export const configSchema = z.object({
  issuer: urlWith(['http:', 'https:'])
    .refine((value) => !new URL(value).search && !new URL(value).hash, { message: 'must not have a query or fragment' })
    .transform((value) => value.replace(/\/+$/, '')),
  http: z.object({
    host: z.string().min(1),
    port: z.coerce.number().int().min(0).max(65535),
    /** Express "trust proxy": false, true, a hop count, or a comma-separated list of addresses/subnets. */
    trustProxy: z.union([z.boolean(), z.number().int().nonnegative(), z.string().min(1)]),
    bodyLimit: z.string().regex(/^\d+(b|kb|mb)$/i, { message: 'must be a size such as 100kb or 1mb' }),
    shutdownGraceMs: positiveInt,
    /**
     * How many server processes share the port (src/workers.ts): a number, or `auto` for one per
     * core. More than one needs PostgreSQL and Redis, which the processes share.
     */
    workers: z.custom<number | 'auto'>((value) => value === 'auto' || (Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 1024), {
      message: 'must be a whole number from 1 to 1024, or auto',
    }),
  }),
  database: z.object({
    url: urlWith(['postgres:', 'postgresql:']).nullable(),
    dataDir: z.string().min(1),
    poolSize: positiveInt.max(1000),
  }),
  redis: z
    .object({
      url: urlWith(['redis:', 'rediss:']).nullable(),
      /** Redis Sentinel instead of url: the sentinels (host:port) and the name of the master they watch. */
      sentinels: z.array(hostPort).default([]),
      sentinelMaster: z.string().min(1).nullable().default(null),
      /** The password of the sentinels, when they require one. */
      sentinelPassword: z.string().min(1).nullable().default(null),
      /** Redis Cluster instead of url or Sentinel: seed nodes (host:port); the others are found from them. */
      clusterNodes: z.array(hostPort).default([]),
      /**
       * The password of the master and replicas found through the sentinels, or of the cluster's
       * nodes (with url, the URL carries it).
       */
      password: z.string().min(1).nullable().default(null),
      /** The ACL user that password belongs to (Redis 6 and later); without it, the default user. */
      username: z.string().min(1).nullable().default(null),
      /**
       * TLS to Redis (on with enabled or a rediss:// URL): PEM files read at start-up. The
       * servers' certificates are always verified, against caFile or else Node's trusted CAs.
       */
      tls: z
        .object({
          enabled: z.boolean().default(false),
          caFile: z.string().min(1).nullable().default(null),
          /** A client certificate and its key, for servers with tls-auth-clients yes. */
          certFile: z.string().min(1).nullable().default(null),
          keyFile: z.string().min(1).nullable().default(null),
          /** The name the servers' certificates must hold, when it differs from the address dialled. */
          serverName: z.string().min(1).nullable().default(null),
        })
        .prefault({}),
      /** The sentinels speak TLS too (same CA, client certificate and server name). */
      sentinelTls: z.boolean().default(false),
      keyPrefix: z.string().max(64).regex(/^[A-Za-z0-9:_.-]*$/, { message: 'may only contain letters, digits and : _ . -' }),
      connectTimeoutMs: positiveInt,
      commandTimeoutMs: positiveInt,
    })
    .superRefine((redis, issues) => {
      const sentinel = redis.sentinels.length > 0 || redis.sentinelMaster !== null;
      const cluster = redis.clusterNodes.length > 0;
      if (cluster && (redis.url !== null || sentinel)) {
        const other = redis.url !== null ? 'REDIS_URL' : 'REDIS_SENTINELS/REDIS_SENTINEL_MASTER';
        issues.addIssue({ code: 'custom', path: ['clusterNodes'], message: `REDIS_CLUSTER_NODES and ${other} are exclusive: set one way to reach Redis` });
      } else if (sentinel && redis.url !== null) {
        issues.addIssue({ code: 'custom', path: ['url'], message: 'REDIS_URL and REDIS_SENTINELS/REDIS_SENTINEL_MASTER are exclusive: set one way to reach Redis' });
      } else if (redis.sentinels.length > 0 && redis.sentinelMaster === null) {
        issues.addIssue({ code: 'custom', path: ['sentinelMaster'], message: 'REDIS_SENTINELS needs REDIS_SENTINEL_MASTER, the name of the master the sentinels monitor' });
      } else if (redis.sentinelMaster !== null && redis.sentinels.length === 0) {
        issues.addIssue({ code: 'custom', path: ['sentinels'], message: 'REDIS_SENTINEL_MASTER needs REDIS_SENTINELS, the sentinels as host:port,…' });
      }
      if (!sentinel && !cluster && (redis.password !== null || redis.username !== null)) {
        issues.addIssue({
          code: 'custom',
          path: [redis.password !== null ? 'password' : 'username'],
          message: 'only used with REDIS_SENTINELS or REDIS_CLUSTER_NODES (with REDIS_URL, the URL carries the user and password)',
        });
      }
      if (!sentinel && redis.sentinelPassword !== null) {
        issues.addIssue({ code: 'custom', path: ['sentinelPassword'], message: 'only used with REDIS_SENTINELS' });
      }
      if (!sentinel && redis.sentinelTls) {
        issues.addIssue({ code: 'custom', path: ['sentinelTls'], message: 'only used with REDIS_SENTINELS (REDIS_TLS or a rediss:// URL turns TLS on for Redis itself)' });
      }
      const { tls } = redis;
      if (tls.keyFile !== null && tls.certFile === null) {
        issues.addIssue({ code: 'custom', path: ['tls', 'keyFile'], message: 'needs REDIS_TLS_CERT_FILE, the client certificate of this key' });
      } else if (tls.certFile !== null && tls.keyFile === null) {
        issues.addIssue({ code: 'custom', path: ['tls', 'certFile'], message: 'needs REDIS_TLS_KEY_FILE, the private key of this certificate' });
      }
      // A TLS setting while no connection uses TLS would silently go unused: refused.
      if (!redisUsesTls(redis) && !redis.sentinelTls) {
        for (const key of ['caFile', 'certFile', 'keyFile', 'serverName'] as const) {
          if (tls[key] !== null) issues.addIssue({ code: 'custom', path: ['tls', key], message: 'TLS is off: set REDIS_TLS=true (or use a rediss:// URL)' });
        }
      }
    }),
  log: z.object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  }),
  /** Prometheus metrics, on a listener of their own (src/metrics/): off until a port is given. */
  metrics: z.object({
    port: z.coerce.number().int().min(0).max(65535).nullable(),
    host: z.string().min(1),
  }),
  passwords: z.object({
    argon2: z.object({
      memoryKiB: positiveInt.min(8192, { message: 'must be at least 8192 (8 MiB)' }).max(4 * 1024 * 1024),
      timeCost: positiveInt.max(100),
      parallelism: positiveInt.max(16),
    }),
    minLength: positiveInt.max(1024),
    /** Bounds on concurrent argon2 work (src/accounts/hashing/bounded-hasher.ts); null: one per core. */
    hashing: z.object({
      concurrency: positiveInt.max(256).nullable(),
      maxQueue: z.coerce.number().int().min(0).max(100_000),
      deadlineMs: positiveInt.max(60_000),
      /**
       * The nice value (0–19) of the threads that hash passwords, so that logins yield the CPU to
       * the token endpoints when both want it (Linux). 0 leaves them as they are.
       */
      niceness: z.number().int().min(0).max(19),
      /**
       * While the event loop is busy serving requests, hashing takes at most this share of one
       * core, in percent (src/accounts/hashing/bounded-hasher.ts). 100: no pacing.
       */
      busyCorePercent: positiveInt.max(100),
    }),
  }),
  secrets: z.object({
    /**
     * Encrypts signing keys at rest (AES-256-GCM, key derived with HKDF). At least 32 characters.
     * Unset: generated once and kept in the data directory (refused when the issuer is https).
     */
    keyEncryptionSecret: z.string().min(32, { message: 'must be at least 32 characters' }).nullable(),
    /** Keys signing cookies, newest first (older ones still verify). Unset: like keyEncryptionSecret. */
    cookieKeys: z.array(z.string().min(32, { message: 'each must be at least 32 characters' })).min(1).nullable(),
    /**
     * Keys encrypting second-factor secrets at rest, newest first: the first seals, all open
     * (docs/second-factors.md). Unset: a key derived from keyEncryptionSecret for this purpose.
     */
    secondFactorKeys: z.array(z.string().min(32, { message: 'each must be at least 32 characters' })).min(1).nullable().default(null),
  }),
  sessions: z
    .object({
      idleTimeoutSeconds: positiveInt.min(60),
      absoluteTimeoutSeconds: positiveInt.min(60),
      /**
       * The lifetime of a session asked for with expiring=false (ArchivesSpace): no idle timeout,
       * ends this long after login. 0 refuses such requests.
       */
      nonExpiringMaxSeconds: z.coerce
        .number()
        .int()
        .min(0)
        .refine((seconds) => seconds === 0 || seconds >= 60, { message: 'must be 0 (refuse expiring=false) or at least 60' }),
      /** Extra header names carrying an API session token, e.g. X-ArchivesSpace-Session. */
      headerAliases: z.array(z.string().regex(/^[A-Za-z0-9-]+$/, { message: 'must be an HTTP header name' }).transform((h) => h.toLowerCase())),
    })
    .refine((s) => s.absoluteTimeoutSeconds >= s.idleTimeoutSeconds, { message: 'absoluteTimeoutSeconds must be at least idleTimeoutSeconds' }),
  tokens: z.object({
    /** The longest lifetime of a personal access token a user may choose. */
    maxExpiryDays: positiveInt.max(3650),
    /** Whether "no expiry" is offered. */
    allowNoExpiry: z.boolean(),
    /** The API-key header pair: the user (username or e-mail) and the token. */
    apiUserHeader: z.string().regex(/^[A-Za-z0-9-]+$/).transform((h) => h.toLowerCase()),
    apiKeyHeader: z.string().regex(/^[A-Za-z0-9-]+$/).transform((h) => h.toLowerCase()),
  }),
  introspection: z.object({
    /**
     * How long an active answer is cached in process (never past the token's exp). Revocations
     * reach every node's cache at once through Redis pub/sub; this bounds anything else.
     */
    cacheTtlSeconds: z.number().int().min(0).max(300),
    /** How long an inactive answer is cached (a re-enabled user's tokens may read inactive this long). */
    inactiveCacheTtlSeconds: z.number().int().min(0).max(60),
    /** Most answers cached per process. 0 turns the cache off. */
    cacheMaxEntries: z.number().int().min(0).max(10_000_000),
    /**
     * Personal-token lookups that find nothing, per source (an introspecting client at
     * /oauth/introspect, a client address at /auth/verify) and process: this many at once, and
     * again per failedLookupWindowSeconds. Past it, personal tokens from that source get 429.
     */
    failedLookupsPerSource: z.number().int().min(1).max(1_000_000),
    failedLookupWindowSeconds: z.number().int().min(1).max(86_400),
  }),
  /** Sign-in throttling (docs/design/sign-in-throttling.md). */
  loginLimits: z.object({
    /** Failures of one source on one account within usernameWindowSeconds before that source is locked out of it. */
    failuresPerUsername: positiveInt,
    usernameWindowSeconds: positiveInt,
    /** The first lockout; each further one within a day doubles, up to maxLockoutSeconds. */
    lockoutSeconds: positiveInt,
    maxLockoutSeconds: positiveInt,
    /** Failures of all sources together on one account within accountWindowSeconds; past it, only known sources may try. */
    failuresPerAccount: positiveInt,
    accountWindowSeconds: positiveInt,
    /** How long a source that signed in to an account stays known to it. */
    knownSourceDays: positiveInt,
    failuresPerIp: positiveInt,
    ipWindowSeconds: positiveInt,
  }),
  api: z.object({
    /** A general limit on the JSON API per client address. */
    requestsPerIpPerMinute: positiveInt,
  }),
  oauth: z.object({
    accessTokenTtlSeconds: positiveInt.min(60).max(86400),
    refreshTokenTtlSeconds: positiveInt.min(300),
    /**
     * How long a just-rotated refresh token presented again gets the answer of its rotation again
     * instead of revoking the login (0: never). Refresh rotation and its grace: docs/clients.md.
     */
    refreshTokenReuseGraceSeconds: z.number().int().min(0).max(300),
    deviceCodeTtlSeconds: positiveInt.min(60).max(3600),
    devicePollIntervalSeconds: positiveInt.max(60),
    userCodeAttemptsPerIpPerHour: positiveInt,
    userCodeAttemptsPerSessionPerHour: positiveInt,
    signingAlgorithm: z.enum(['RS256', 'PS256', 'ES256', 'EdDSA']),
    /** Resource servers (RFC 8707 audiences) and the format of their access tokens. */
    resources: z.record(
      z.string().min(1),
      z.object({
        format: z.enum(['opaque', 'jwt']),
        /** What its JWT access tokens look like: RFC 9068 (absent), WLCG 1.0 or SciTokens 2.0 (docs/wlcg-tokens.md). */
        profile: z.enum(TOKEN_PROFILES).optional(),
      }),
    ),
    /** The audience of tokens for clients that never send `resource`. */
    defaultResource: z.string().min(1),
    /** Whether client_credentials and refresh_token may be issued ahead of oidc-provider (oauth/grants/). */
    directGrants: z.boolean(),
    /** The lifetime of a token issued by token exchange, never beyond its subject credential's (docs/token-exchange.md). */
    tokenExchangeTtlSeconds: positiveInt.min(30).max(3600).default(300),
    /** DPoP (RFC 9449): sender-constrained tokens (docs/dpop.md). */
    dpop: z.object({
      /** Whether every DPoP proof at the token endpoint must carry a nonce Tessera gave (DPoP-Nonce). */
      requireNonce: z.boolean(),
      /** How far a proof's iat may be from now at Tessera's resource paths (forward-auth, /api/v1/me, userinfo), in seconds. */
      proofMaxAgeSeconds: positiveInt.min(5).max(300),
      /** Whether those paths ask for a nonce of Tessera's in each proof (RFC 9449 §9). */
      resourceNonces: z.boolean(),
    }),
  }),
  clients: z.array(declaredClientSchema),
  /**
   * The scope catalog: name → description shown to people granting it, or `{ description, paths:
   * true }` for a scope that may be narrowed to a path. Operators add their own. (Parsed, `scopes`
   * holds the descriptions and `pathScopes` the path-scoped names.)
   */
  scopes: z
    .record(z.string().regex(SCOPE_NAME, { message: 'scope names are lower-case letters, digits and : _ . -' }), scopeEntrySchema)
    .refine((catalog) => 'read' in catalog, { message: 'must define the scope "read"' })
    .refine((catalog) => !(ADMIN_SCOPE in catalog), {
      message: `may not define "${ADMIN_SCOPE}": that scope is Tessera's own (accounts hold it to administer Tessera) and is never put in a token`,
    }),
  accounts: z.object({
    /** Allowed scopes of a user created without --scopes. */
    defaultScopes: z.array(z.string().min(1)).min(1),
  }),
  admin: z.object({
    username: z.string().min(1),
    password: z.string().min(1).nullable(),
  }),
  /** Upstream identity providers for the browser sign-in (identity-providers.ts, docs/sign-in-providers.md). */
  identityProviders: identityProvidersSchema,
  /** The operator's product name, logo, colours and support links (docs/branding.md). */
  branding: brandingSchema.default({ productName: 'Tessera' }),
  /** Outgoing e-mail (password-reset links). Null: no mail, and /login offers no reset. */
  mail: z
    .object({
      smtp: z
        .object({
          /** smtp://user:pass@host:port or smtps://… (TESSERA_SMTP_URL, a secret: it may hold the password). */
          url: urlWith(['smtp:', 'smtps:']).optional(),
          host: z.string().min(1).optional(),
          port: z.coerce.number().int().min(1).max(65535).optional(),
          /** TLS from the start (port 465); false: STARTTLS when the server offers it. */
          secure: z.boolean().default(false),
          auth: z.object({ user: z.string().min(1), pass: z.string().min(1) }).optional(),
        })
        .refine((smtp) => smtp.url !== undefined || smtp.host !== undefined, { message: 'give url, or host (and port)' }),
      /** The sender, e.g. "Zenodo <no-reply@zenodo.org>". */
      from: z.string().min(3),
    })
    .nullable()
    .default(null),
  passwordReset: z
    .object({
      /** How long an e-mailed reset link works. */
      linkTtlSeconds: positiveInt.min(60).max(86400).default(1800),
      /** Reset requests per client address per hour (429 beyond). */
      requestsPerAddressPerHour: positiveInt.default(10),
      /** Messages per account per hour: further requests answer the same page and send nothing. */
      messagesPerAccountPerHour: positiveInt.default(3),
    })
    .default({ linkTtlSeconds: 1800, requestsPerAddressPerHour: 10, messagesPerAccountPerHour: 3 }),
  /** Second factors (docs/second-factors.md): TOTP apps, recovery codes, passkeys. */
  secondFactor: z
    .object({
      /** Accounts holding any of these scopes must set up a second factor before they get a session. */
      requiredForScopes: z.array(z.string().regex(SCOPE_NAME)).default([]),
      /** Wrong answers per account within failureWindowSeconds before answers are refused until the window ends. */
      failuresPerAccount: positiveInt.max(100).default(5),
      failureWindowSeconds: positiveInt.max(86_400).default(900),
      /** How long a sign-in waits for its second step after the password. */
      pendingSeconds: positiveInt.min(60).max(3600).default(300),
    })
    .prefault({}),
  /**
   * The endpoint secret scanners report leaked tokens to (docs/leaked-tokens.md): off unless
   * `enabled`. Each reporter is served at /api/v1/leaked-tokens/<name> and signs its reports with
   * keys published at its `keysUrl` (GitHub's secret-scanning partner format).
   */
  leakedTokens: z
    .object({
      enabled: z.boolean().default(false),
      reporters: z
        .record(z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, { message: 'reporter names are lower-case letters, digits and -, at most 32' }), z.object({ keysUrl: urlWith(['https:', 'http:']) }))
        .default({ github: { keysUrl: 'https://api.github.com/meta/public_keys/secret_scanning' } }),
      /** The largest report body read (bytes); larger ones are refused with 413 before any check. */
      maxBodyBytes: positiveInt.max(10_485_760).default(1_048_576),
      /** Tokens in one report at most (400 beyond). */
      maxTokensPerReport: positiveInt.max(10_000).default(1000),
      /** The fewest seconds between two reads of a reporter's keys caused by a key id it does not know. */
      keyRefreshSeconds: positiveInt.max(86_400).default(60),
      /** How long the keys read are trusted before they are read again (a key withdrawn stops working then). */
      keyMaxAgeSeconds: positiveInt.max(604_800).default(3600),
    })
    .prefault({})
    .refine((leaked) => !leaked.enabled || Object.keys(leaked.reporters).length > 0, { message: 'enabled, but no reporter is configured' }),
}).superRefine((config, context) => {
  if (config.metrics.port !== null && config.metrics.port !== 0 && config.metrics.port === config.http.port) {
    context.addIssue({ code: 'custom', path: ['metrics', 'port'], message: `is the public port (${config.http.port}): metrics need a port of their own, which only the monitoring reaches` });
  }
  if (!(config.oauth.defaultResource in config.oauth.resources)) {
    context.addIssue({ code: 'custom', path: ['oauth', 'defaultResource'], message: `"${config.oauth.defaultResource}" is not one of oauth.resources` });
  }
  for (const [audience, server] of Object.entries(config.oauth.resources)) {
    if (server.profile === undefined || server.profile === 'rfc9068') continue;
    if (server.format !== 'jwt') {
      context.addIssue({ code: 'custom', path: ['oauth', 'resources', audience, 'profile'], message: `the ${server.profile} profile is a JWT profile: set format to "jwt" (it is "${server.format}")` });
    }
    if (!PROFILE_ALGORITHMS.includes(config.oauth.signingAlgorithm)) {
      context.addIssue({ code: 'custom', path: ['oauth', 'resources', audience, 'profile'], message: `${server.profile} tokens must be signed with ${PROFILE_ALGORITHMS.join(' or ')}, which its verifiers accept: oauth.signingAlgorithm is ${config.oauth.signingAlgorithm}` });
    }
  }
  if (new URL(config.issuer).protocol === 'https:') {
    for (const key of ['keyEncryptionSecret', 'cookieKeys'] as const) {
      if (config.secrets[key] === null) {
        context.addIssue({ code: 'custom', path: ['secrets', key], message: 'is required when the issuer is https (generated secrets suit trials only)' });
      }
    }
  }
  const seen = new Set<string>();
  config.clients.forEach((client, index) => {
    if (seen.has(client.clientId)) context.addIssue({ code: 'custom', path: ['clients', index, 'clientId'], message: 'declared twice' });
    seen.add(client.clientId);
    const confidential = client.kind !== 'device';
    if (confidential && !client.secretSha256 && !client.jwks) {
      context.addIssue({ code: 'custom', path: ['clients', index, 'secretSha256'], message: `is required for a ${client.kind} client, unless it has public keys in jwks (private_key_jwt)` });
    }
    if (confidential && client.secretSha256 && client.jwks) {
      context.addIssue({ code: 'custom', path: ['clients', index, 'jwks'], message: 'give either secretSha256 or jwks, not both: a client authenticates one way' });
    }
    if (!confidential && client.secretSha256) context.addIssue({ code: 'custom', path: ['clients', index, 'secretSha256'], message: 'a device client is public and has no secret' });
    if (!confidential && client.jwks) context.addIssue({ code: 'custom', path: ['clients', index, 'jwks'], message: 'a device client is public and has no keys' });
    if (client.mayIntrospect && client.kind !== 'service' && client.kind !== 'resource_server') {
      context.addIssue({ code: 'custom', path: ['clients', index, 'mayIntrospect'], message: `only service clients may be granted introspection, not ${client.kind} clients` });
    }
    if (client.kind === 'web' && client.redirectUris.length === 0) context.addIssue({ code: 'custom', path: ['clients', index, 'redirectUris'], message: 'a web client needs at least one redirect URI' });
    client.scopes.forEach((scope, i) => {
      const problem = scope === 'openid' || scope === 'offline_access' ? null : catalogProblem(scope, config.scopes);
      if (problem) context.addIssue({ code: 'custom', path: ['clients', index, 'scopes', i], message: problem });
    });
    if (client.defaultResource && !(client.defaultResource in config.oauth.resources)) {
      context.addIssue({ code: 'custom', path: ['clients', index, 'defaultResource'], message: `"${client.defaultResource}" is not one of oauth.resources` });
    }
    for (const { field, message } of introspectionMetadataProblems(client, config.oauth.signingAlgorithm)) context.addIssue({ code: 'custom', path: ['clients', index, field], message });
    if (client.tokenExchange) {
      if (!EXCHANGING_KINDS.has(client.kind)) context.addIssue({ code: 'custom', path: ['clients', index, 'tokenExchange'], message: `a ${client.kind} client cannot authenticate, so it may not exchange tokens` });
      for (const problem of tokenExchangePolicyProblems(client.tokenExchange, config.scopes, config.oauth.resources, pathScopedNames(config.scopes))) {
        context.addIssue({ code: 'custom', path: ['clients', index, 'tokenExchange', ...problem.path], message: problem.message });
      }
    }
  });
  for (const [index, scope] of config.accounts.defaultScopes.entries()) {
    const problem = catalogProblem(scope, config.scopes);
    if (problem) context.addIssue({ code: 'custom', path: ['accounts', 'defaultScopes', index], message: problem });
  }
  config.identityProviders.forEach((provider, index) => {
    const granted = [...(provider.defaultScopes ?? []), ...provider.scopeRules.flatMap((rule) => rule.scopes)];
    for (const scope of granted) {
      if (!(scope in config.scopes)) context.addIssue({ code: 'custom', path: ['identityProviders', index], message: `grants "${scope}", which is not in the scope catalog` });
    }
  });
  // A session used only at resource servers slides when introspection asks the stores, which the
  // cache does once per cacheTtlSeconds: that must come round before the session goes idle.
  if (config.introspection.cacheTtlSeconds >= config.sessions.idleTimeoutSeconds) {
    context.addIssue({
      code: 'custom',
      path: ['introspection', 'cacheTtlSeconds'],
      message: `must be less than sessions.idleTimeoutSeconds (${config.sessions.idleTimeoutSeconds}), or sessions used only at resource servers would go idle`,
    });
  }
}).transform(({ scopes, ...config }) => ({
  ...config,
  /** The scope catalog's descriptions, by name. */
  scopes: Object.fromEntries(Object.entries(scopes).map(([name, entry]) => [name, typeof entry === 'string' ? entry : entry.description])),
  /** The catalog's names that may carry a path ("storage.read" → "storage.read:/atlas"). */
  pathScopes: Object.entries(scopes).filter(([, entry]) => typeof entry === 'object' && entry.paths).map(([name]) => name),
}));

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
