import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { configSchema, redisUsesTls, type Config } from './schema.ts';

const here = dirname(fileURLToPath(import.meta.url));
/** config/default.json, found from src/config (sources) and from dist/config (build). */
export const DEFAULT_CONFIG_FILE = resolve(here, '..', '..', 'config', 'default.json');

type Kind = 'string' | 'int' | 'intOrAuto' | 'boolean' | 'trustProxy' | 'list';
interface EnvBinding { path: string[]; kind: Kind; secret?: boolean }

/** Every environment variable Tessera reads, and the configuration key it sets. */
export const ENV_BINDINGS: Record<string, EnvBinding> = {
  ISSUER: { path: ['issuer'], kind: 'string' },
  HOST: { path: ['http', 'host'], kind: 'string' },
  PORT: { path: ['http', 'port'], kind: 'int' },
  DATABASE_URL: { path: ['database', 'url'], kind: 'string', secret: true },
  REDIS_URL: { path: ['redis', 'url'], kind: 'string', secret: true },
  REDIS_SENTINELS: { path: ['redis', 'sentinels'], kind: 'list' },
  REDIS_SENTINEL_MASTER: { path: ['redis', 'sentinelMaster'], kind: 'string' },
  REDIS_SENTINEL_PASSWORD: { path: ['redis', 'sentinelPassword'], kind: 'string', secret: true },
  REDIS_CLUSTER_NODES: { path: ['redis', 'clusterNodes'], kind: 'list' },
  REDIS_PASSWORD: { path: ['redis', 'password'], kind: 'string', secret: true },
  REDIS_USERNAME: { path: ['redis', 'username'], kind: 'string' },
  REDIS_TLS: { path: ['redis', 'tls', 'enabled'], kind: 'boolean' },
  REDIS_TLS_CA_FILE: { path: ['redis', 'tls', 'caFile'], kind: 'string' },
  REDIS_TLS_CERT_FILE: { path: ['redis', 'tls', 'certFile'], kind: 'string' },
  REDIS_TLS_KEY_FILE: { path: ['redis', 'tls', 'keyFile'], kind: 'string' },
  REDIS_TLS_SERVERNAME: { path: ['redis', 'tls', 'serverName'], kind: 'string' },
  REDIS_SENTINEL_TLS: { path: ['redis', 'sentinelTls'], kind: 'boolean' },
  TESSERA_TRUST_PROXY: { path: ['http', 'trustProxy'], kind: 'trustProxy' },
  TESSERA_BODY_LIMIT: { path: ['http', 'bodyLimit'], kind: 'string' },
  TESSERA_SHUTDOWN_GRACE_MS: { path: ['http', 'shutdownGraceMs'], kind: 'int' },
  TESSERA_WORKERS: { path: ['http', 'workers'], kind: 'intOrAuto' },
  TESSERA_DATA_DIR: { path: ['database', 'dataDir'], kind: 'string' },
  TESSERA_DB_POOL_SIZE: { path: ['database', 'poolSize'], kind: 'int' },
  TESSERA_REDIS_PREFIX: { path: ['redis', 'keyPrefix'], kind: 'string' },
  TESSERA_REDIS_CONNECT_TIMEOUT_MS: { path: ['redis', 'connectTimeoutMs'], kind: 'int' },
  TESSERA_REDIS_COMMAND_TIMEOUT_MS: { path: ['redis', 'commandTimeoutMs'], kind: 'int' },
  TESSERA_LOG_LEVEL: { path: ['log', 'level'], kind: 'string' },
  TESSERA_METRICS_PORT: { path: ['metrics', 'port'], kind: 'int' },
  TESSERA_METRICS_HOST: { path: ['metrics', 'host'], kind: 'string' },
  TESSERA_ARGON2_MEMORY_KIB: { path: ['passwords', 'argon2', 'memoryKiB'], kind: 'int' },
  TESSERA_ARGON2_TIME_COST: { path: ['passwords', 'argon2', 'timeCost'], kind: 'int' },
  TESSERA_ARGON2_PARALLELISM: { path: ['passwords', 'argon2', 'parallelism'], kind: 'int' },
  TESSERA_PASSWORD_MIN_LENGTH: { path: ['passwords', 'minLength'], kind: 'int' },
  TESSERA_ADMIN_USERNAME: { path: ['admin', 'username'], kind: 'string' },
  TESSERA_ADMIN_PASSWORD: { path: ['admin', 'password'], kind: 'string', secret: true },
  TESSERA_SESSION_IDLE_TIMEOUT: { path: ['sessions', 'idleTimeoutSeconds'], kind: 'int' },
  TESSERA_SESSION_ABSOLUTE_TIMEOUT: { path: ['sessions', 'absoluteTimeoutSeconds'], kind: 'int' },
  TESSERA_SESSION_NON_EXPIRING_MAX: { path: ['sessions', 'nonExpiringMaxSeconds'], kind: 'int' },
  TESSERA_SESSION_HEADER_ALIASES: { path: ['sessions', 'headerAliases'], kind: 'list' },
  TESSERA_LOGIN_FAILURES_PER_USERNAME: { path: ['loginLimits', 'failuresPerUsername'], kind: 'int' },
  TESSERA_LOGIN_FAILURES_PER_ACCOUNT: { path: ['loginLimits', 'failuresPerAccount'], kind: 'int' },
  TESSERA_LOGIN_FAILURES_PER_IP: { path: ['loginLimits', 'failuresPerIp'], kind: 'int' },
  TESSERA_API_REQUESTS_PER_IP_PER_MINUTE: { path: ['api', 'requestsPerIpPerMinute'], kind: 'int' },
  TESSERA_HASH_CONCURRENCY: { path: ['passwords', 'hashing', 'concurrency'], kind: 'int' },
  TESSERA_HASH_NICENESS: { path: ['passwords', 'hashing', 'niceness'], kind: 'int' },
  TESSERA_HASH_BUSY_CORE_PERCENT: { path: ['passwords', 'hashing', 'busyCorePercent'], kind: 'int' },
  TESSERA_INTROSPECTION_CACHE_TTL: { path: ['introspection', 'cacheTtlSeconds'], kind: 'int' },
  TESSERA_INTROSPECTION_CACHE_MAX_ENTRIES: { path: ['introspection', 'cacheMaxEntries'], kind: 'int' },
  TESSERA_FAILED_LOOKUPS_PER_SOURCE: { path: ['introspection', 'failedLookupsPerSource'], kind: 'int' },
  TESSERA_FAILED_LOOKUP_WINDOW: { path: ['introspection', 'failedLookupWindowSeconds'], kind: 'int' },
  TESSERA_TOKEN_MAX_EXPIRY_DAYS: { path: ['tokens', 'maxExpiryDays'], kind: 'int' },
  TESSERA_API_USER_HEADER: { path: ['tokens', 'apiUserHeader'], kind: 'string' },
  TESSERA_API_KEY_HEADER: { path: ['tokens', 'apiKeyHeader'], kind: 'string' },
  TESSERA_DEFAULT_SCOPES: { path: ['accounts', 'defaultScopes'], kind: 'list' },
  TESSERA_KEY_SECRET: { path: ['secrets', 'keyEncryptionSecret'], kind: 'string', secret: true },
  TESSERA_COOKIE_KEYS: { path: ['secrets', 'cookieKeys'], kind: 'list', secret: true },
  TESSERA_SECOND_FACTOR_KEYS: { path: ['secrets', 'secondFactorKeys'], kind: 'list', secret: true },
  TESSERA_SECOND_FACTOR_REQUIRED_FOR_SCOPES: { path: ['secondFactor', 'requiredForScopes'], kind: 'list' },
  TESSERA_ACCESS_TOKEN_TTL: { path: ['oauth', 'accessTokenTtlSeconds'], kind: 'int' },
  TESSERA_REFRESH_TOKEN_TTL: { path: ['oauth', 'refreshTokenTtlSeconds'], kind: 'int' },
  TESSERA_REFRESH_REUSE_GRACE_SECONDS: { path: ['oauth', 'refreshTokenReuseGraceSeconds'], kind: 'int' },
  TESSERA_DEVICE_CODE_TTL: { path: ['oauth', 'deviceCodeTtlSeconds'], kind: 'int' },
  TESSERA_DEVICE_POLL_INTERVAL: { path: ['oauth', 'devicePollIntervalSeconds'], kind: 'int' },
  TESSERA_SIGNING_ALG: { path: ['oauth', 'signingAlgorithm'], kind: 'string' },
  TESSERA_DIRECT_GRANTS: { path: ['oauth', 'directGrants'], kind: 'boolean' },
  TESSERA_TOKEN_EXCHANGE_TTL: { path: ['oauth', 'tokenExchangeTtlSeconds'], kind: 'int' },
  TESSERA_DPOP_REQUIRE_NONCE: { path: ['oauth', 'dpop', 'requireNonce'], kind: 'boolean' },
  TESSERA_DPOP_PROOF_MAX_AGE_SECONDS: { path: ['oauth', 'dpop', 'proofMaxAgeSeconds'], kind: 'int' },
  TESSERA_DPOP_RESOURCE_NONCES: { path: ['oauth', 'dpop', 'resourceNonces'], kind: 'boolean' },
  TESSERA_SMTP_URL: { path: ['mail', 'smtp', 'url'], kind: 'string', secret: true },
  TESSERA_SMTP_HOST: { path: ['mail', 'smtp', 'host'], kind: 'string' },
  TESSERA_SMTP_PORT: { path: ['mail', 'smtp', 'port'], kind: 'int' },
  TESSERA_SMTP_SECURE: { path: ['mail', 'smtp', 'secure'], kind: 'boolean' },
  TESSERA_SMTP_USER: { path: ['mail', 'smtp', 'auth', 'user'], kind: 'string' },
  TESSERA_SMTP_PASSWORD: { path: ['mail', 'smtp', 'auth', 'pass'], kind: 'string', secret: true },
  TESSERA_MAIL_FROM: { path: ['mail', 'from'], kind: 'string' },
  TESSERA_PASSWORD_RESET_TTL: { path: ['passwordReset', 'linkTtlSeconds'], kind: 'int' },
  TESSERA_LEAKED_TOKENS: { path: ['leakedTokens', 'enabled'], kind: 'boolean' },
};
/** Read by loadConfig itself, not a configuration key. */
const META_VARIABLES = new Set(['TESSERA_CONFIG']);

/**
 * `<NAME>_FILE`, for each secret variable: the path of a file holding its value (a Docker or
 * Kubernetes secret mounted as a file), so that the secret stays out of the environment.
 */
export const SECRET_FILE_SUFFIX = '_FILE';
const SECRET_FILE_VARIABLES = new Map(
  Object.entries(ENV_BINDINGS)
    .filter(([, binding]) => binding.secret)
    .map(([name]) => [`${name}${SECRET_FILE_SUFFIX}`, name]),
);

/**
 * The value of a secret variable read from the file its `_FILE` variable names: the end of line
 * a file ends with is not part of the secret, and in a list (TESSERA_COOKIE_KEYS) each line is an
 * item, as each comma is. Pushes a problem naming the variable and path (never the content) when
 * the file cannot be read.
 */
function readSecretFile(fileVariable: string, file: string, binding: EnvBinding, problems: string[]): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    problems.push(`${fileVariable}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    return undefined;
  }
  return binding.kind === 'list' ? text.split(/\r?\n/).join(',') : text.replace(/\r?\n$/, '');
}

/** Paths whose values are secrets: never printed, never logged. */
export const SECRET_PATHS = [['admin', 'password'], ['secrets', 'keyEncryptionSecret'], ['secrets', 'cookieKeys'], ['secrets', 'secondFactorKeys'], ['redis', 'sentinelPassword'], ['redis', 'password'], ['mail', 'smtp', 'auth', 'pass']];
/** Paths holding URLs that may carry a password. */
export const URL_PATHS = [['database', 'url'], ['redis', 'url'], ['mail', 'smtp', 'url']];

export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Json = Record<string, unknown>;

function setPath(target: Json, path: string[], value: unknown): void {
  let node = target;
  for (const part of path.slice(0, -1)) {
    if (typeof node[part] !== 'object' || node[part] === null) node[part] = {};
    node = node[part] as Json;
  }
  node[path[path.length - 1]!] = value;
}

function mergeDeep(base: Json, override: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    if (value && typeof value === 'object' && !Array.isArray(value) && current && typeof current === 'object' && !Array.isArray(current)) {
      out[key] = mergeDeep(current as Json, value as Json);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function readJson(file: string, problems: string[]): Json {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push(`${file}: must hold a JSON object`);
      return {};
    }
    const { $comment: _comment, ...rest } = parsed as Json;
    return rest;
  } catch (error) {
    problems.push(`${file}: ${(error as Error).message}`);
    return {};
  }
}

function fromEnv(binding: EnvBinding, raw: string): unknown {
  if (binding.kind === 'int') return raw.trim() === '' ? raw : Number(raw);
  if (binding.kind === 'intOrAuto') return /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw.trim();
  // Anything but true or false is left as it is, for the schema to refuse by name.
  if (binding.kind === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw;
  if (binding.kind === 'list') return raw.split(',').map((item) => item.trim()).filter(Boolean);
  if (binding.kind === 'trustProxy') {
    if (raw === 'true' || raw === 'false') return raw === 'true';
    if (/^\d+$/.test(raw)) return Number(raw);
    return raw;
  }
  return raw;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Extra overrides applied after the environment (used by tests and the composition root). */
  overrides?: Json;
}

/**
 * Builds the configuration from config/default.json, an optional TESSERA_CONFIG file, and the
 * environment, in that order of precedence (later wins). Throws ConfigError naming every bad key.
 */
export function loadConfig({ env = process.env, overrides = {} }: LoadOptions = {}): Config {
  const problems: string[] = [];
  let raw = readJson(DEFAULT_CONFIG_FILE, problems);
  const sourceOf = new Map<string, string>();

  const extraFile = env.TESSERA_CONFIG;
  const fromFile = extraFile ? readJson(resolve(extraFile), problems) : {};
  raw = mergeDeep(raw, fromFile);

  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const binding = ENV_BINDINGS[name];
    const fromFileOf = SECRET_FILE_VARIABLES.get(name);
    if (binding) {
      setPath(raw, binding.path, fromEnv(binding, value));
      sourceOf.set(binding.path.join('.'), name);
    } else if (fromFileOf !== undefined) {
      const secretBinding = ENV_BINDINGS[fromFileOf]!;
      if (env[fromFileOf] !== undefined) {
        problems.push(`${name}: ${fromFileOf} is set too; give the secret one way`);
        continue;
      }
      const secret = readSecretFile(name, value, secretBinding, problems);
      if (secret === undefined) continue;
      setPath(raw, secretBinding.path, fromEnv(secretBinding, secret));
      sourceOf.set(secretBinding.path.join('.'), name);
    } else if (name.startsWith('TESSERA_') && !META_VARIABLES.has(name)) {
      problems.push(`${name}: unknown setting (known: ${[...Object.keys(ENV_BINDINGS), ...SECRET_FILE_VARIABLES.keys()].filter((k) => k.startsWith('TESSERA_')).join(', ')})`);
    }
  }
  raw = mergeDeep(raw, overrides);
  if (problems.length) throw new ConfigError(problems);
  // Nobody named the issuer: it follows the port Tessera listens on (the default names port 8080).
  const issuerNamed = 'issuer' in fromFile || env.ISSUER !== undefined || 'issuer' in overrides;
  const port = (raw.http as Json | undefined)?.port;
  if (!issuerNamed && typeof port === 'number' && Number.isInteger(port) && port > 0) raw.issuer = `http://localhost:${port}`;

  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(describeIssues(result.error.issues, sourceOf));
  // A TLS file that cannot be used is a configuration error now, not a failure to start later.
  readRedisTls(result.data.redis);
  return result.data;
}

function describeIssues(issues: z.core.$ZodIssue[], sourceOf: Map<string, string>): string[] {
  return issues.map((issue) => {
    const key = issue.path.join('.');
    // An item of a list (REDIS_SENTINELS) is named by the list's variable.
    const env = sourceOf.get(key) ?? (typeof issue.path.at(-1) === 'number' ? sourceOf.get(issue.path.slice(0, -1).join('.')) : undefined);
    const name = env ? `${env} (${key})` : key || '(root)';
    return `${name}: ${issue.message}`;
  });
}

/** A Redis TLS set-up with its files read: what the store takes (RedisTls in src/store/redis/connection.ts). */
export interface RedisTlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  serverName?: string;
}

/** A configuration key with the environment variable that sets it, for messages. */
function settingName(path: string[]): string {
  const key = path.join('.');
  const env = Object.entries(ENV_BINDINGS).find(([, binding]) => binding.path.join('.') === key)?.[0];
  return env ? `${env} (${key})` : key;
}

/** Whether a PEM file holds one certificate or more, each of which parses. */
function holdsCertificates(pem: Buffer): boolean {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  try {
    for (const block of blocks) new X509Certificate(block);
  } catch {
    return false;
  }
  return blocks.length > 0;
}

/**
 * The Redis TLS settings with their files read, which happens at start-up only (a renewed
 * certificate needs a restart): `tls` for Redis itself when it uses TLS, `sentinelTls` for the
 * sentinels with REDIS_SENTINEL_TLS. Throws ConfigError naming the setting of each file that
 * cannot be read or used; a message never holds a file's content.
 */
export function readRedisTls(redis: Config['redis']): { tls?: RedisTlsMaterial; sentinelTls?: RedisTlsMaterial } {
  const dataTls = redisUsesTls(redis);
  if (!dataTls && !redis.sentinelTls) return {};
  const problems: string[] = [];
  const name = (key: keyof Config['redis']['tls']) => settingName(['redis', 'tls', key]);
  const read = (key: 'caFile' | 'certFile' | 'keyFile'): Buffer | undefined => {
    const file = redis.tls[key];
    if (file === null) return undefined;
    try {
      return readFileSync(file);
    } catch (error) {
      problems.push(`${name(key)}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
      return undefined;
    }
  };
  const [ca, cert, key] = [read('caFile'), read('certFile'), read('keyFile')];
  if (ca && !holdsCertificates(ca)) problems.push(`${name('caFile')}: ${redis.tls.caFile} holds no PEM certificate`);
  const certOk = cert !== undefined && holdsCertificates(cert);
  if (cert && !certOk) problems.push(`${name('certFile')}: ${redis.tls.certFile} holds no PEM certificate`);
  let keyOk = false;
  if (key) {
    try {
      createPrivateKey(key);
      keyOk = true;
    } catch {
      const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(key.toString('latin1'));
      problems.push(`${name('keyFile')}: ${redis.tls.keyFile} ${encrypted ? 'is encrypted (Tessera needs it unencrypted)' : 'holds no PEM private key'}`);
    }
  }
  if (certOk && keyOk) {
    try {
      createSecureContext({ cert, key });
    } catch {
      problems.push(`${name('keyFile')}: ${redis.tls.keyFile} is not the key of the certificate in ${redis.tls.certFile}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  const material: RedisTlsMaterial = {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined || key === undefined ? {} : { cert, key }),
    ...(redis.tls.serverName === null ? {} : { serverName: redis.tls.serverName }),
  };
  return { ...(dataTls ? { tls: material } : {}), ...(redis.sentinelTls ? { sentinelTls: material } : {}) };
}

/** Replaces the password of a URL with ***; leaves anything unparseable alone. */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '***';
  }
}

/** A copy of the configuration that is safe to print or log. */
export function redactConfig(config: Config): Json {
  const copy = structuredClone(config) as unknown as Json;
  // (A section that is not configured, e.g. mail: null, has nothing to hide.)
  const at = (path: string[]) => path.slice(0, -1).reduce<Json | undefined>((node, part) => (node?.[part] ?? undefined) as Json | undefined, copy);
  for (const path of SECRET_PATHS) {
    const parent = at(path);
    if (parent && parent[path.at(-1)!] != null) parent[path.at(-1)!] = '***';
  }
  // Each identity provider's secret or private key.
  for (const provider of (copy.identityProviders ?? []) as Json[]) {
    for (const key of ['clientSecret', 'privateKey']) if (provider[key] != null) provider[key] = '***';
  }
  for (const path of URL_PATHS) {
    const parent = at(path);
    const value = parent?.[path.at(-1)!];
    if (parent && typeof value === 'string') parent[path.at(-1)!] = redactUrl(value);
  }
  return copy;
}

/** Whether Tessera keeps its ephemeral state in Redis (a URL, Sentinel or a cluster), shared by every process. */
export function usesRedis(config: Config): boolean {
  return config.redis.url !== null || config.redis.sentinelMaster !== null || config.redis.clusterNodes.length > 0;
}

/** Where the embedded database lives, resolved against the working directory. */
export function dataDirectory(config: Config): string {
  return resolve(config.database.dataDir);
}

/**
 * loadConfig for a command run by a person: a configuration error is printed on stderr as
 * `tessera: …` and answered with undefined (the caller exits with EX_CONFIG); anything else throws.
 */
export function loadConfigOrReport(options: LoadOptions = {}): Config | undefined {
  try {
    return loadConfig(options);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`tessera: ${error.message}`);
    return undefined;
  }
}
