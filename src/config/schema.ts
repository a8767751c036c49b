import { z } from 'zod';

/** A URL string whose scheme is one of `protocols`. */
const urlWith = (protocols: string[]) =>
  z.string().refine((value) => {
    try {
      return protocols.includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` });

/** A scope name: what RFC 6749 allows, narrowed to a readable lower-case alphabet. */
export const SCOPE_NAME = /^[a-z][a-z0-9:_.-]{0,63}$/;

const positiveInt = z.coerce.number().int().positive();

/**
 * The whole configuration. Defaults live in config/default.json (documented in config/README.md);
 * this schema is what makes a value valid. Everything is parsed once, at boot.
 */
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
  }),
  database: z.object({
    url: urlWith(['postgres:', 'postgresql:']).nullable(),
    dataDir: z.string().min(1),
    poolSize: positiveInt.max(1000),
  }),
  redis: z.object({
    url: urlWith(['redis:', 'rediss:']).nullable(),
    keyPrefix: z.string().max(64).regex(/^[A-Za-z0-9:_.-]*$/, { message: 'may only contain letters, digits and : _ . -' }),
    connectTimeoutMs: positiveInt,
    commandTimeoutMs: positiveInt,
  }),
  log: z.object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  }),
  passwords: z.object({
    argon2: z.object({
      memoryKiB: positiveInt.min(8192, { message: 'must be at least 8192 (8 MiB)' }).max(4 * 1024 * 1024),
      timeCost: positiveInt.max(100),
      parallelism: positiveInt.max(16),
    }),
    minLength: positiveInt.max(1024),
  }),
  /** The scope catalog: name → description shown to people granting it. Operators add their own. */
  scopes: z
    .record(z.string().regex(SCOPE_NAME, { message: 'scope names are lower-case letters, digits and : _ . -' }), z.string().min(1))
    .refine((catalog) => 'read' in catalog, { message: 'must define the scope "read"' }),
  accounts: z.object({
    /** Allowed scopes of a user created without --scopes. */
    defaultScopes: z.array(z.string().regex(SCOPE_NAME)).min(1),
  }),
  admin: z.object({
    username: z.string().min(1),
    password: z.string().min(1).nullable(),
  }),
}).superRefine((config, context) => {
  for (const [index, scope] of config.accounts.defaultScopes.entries()) {
    if (!(scope in config.scopes)) {
      context.addIssue({ code: 'custom', path: ['accounts', 'defaultScopes', index], message: `"${scope}" is not in the scope catalog` });
    }
  }
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
