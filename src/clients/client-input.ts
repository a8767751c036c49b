// Validation of what people send to create a client or replace its keys: the schemas, and a proof
// that each public key imports with the library that will verify the client's assertions.
import { importJWK } from 'jose';
import { z } from 'zod';
import { CLIENT_ID, CLIENT_KINDS, clientJwksSchema, introspectionMetadataProblems, type ClientJwks, type ClientKind, type ClientPublicJwk, type Config } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import { checkCatalogScope } from '../shared/path-scopes.ts';
import { isConfidential } from './client.ts';
import { audienceProblems, EXCHANGING_KINDS, scopeProblems, tokenExchangePolicySchema } from '../config/token-exchange-policy.ts';

/** Kinds whose tokens may come with an ID token or a refresh token. */
const USER_FACING_KINDS: ReadonlySet<ClientKind> = new Set(['device', 'web']);

/** Scopes oidc-provider itself understands, allowed beside the catalog. */
const PROTOCOL_SCOPES: ReadonlySet<string> = new Set(['openid', 'offline_access']);

const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

const MAX_REDIRECT_URI_LENGTH = 2000;

/** Why a redirect URI is refused, or null when it is acceptable. */
function redirectUriProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.protocol === 'http:') {
    if (!LOOPBACK_HOSTS.has(url.hostname)) return 'must use https (http is allowed only for localhost)';
  } else if (url.protocol !== 'https:') {
    return 'must use https (http is allowed only for localhost)';
  }
  if (value.includes('#')) return 'must not contain a fragment';
  if (url.username || url.password) return 'must not contain a user name or password';
  return null;
}

/**
 * The schema of CreateClientInput: scopes from the catalog (path scopes under a `pathScopes` name),
 * a default resource from `resources`, RFC 9701 metadata checked against `signingAlgorithm` (and
 * then not kept: every client's signed answers use it).
 */
export function createClientSchema(scopeCatalog: Record<string, string>, resources: Config['oauth']['resources'], signingAlgorithm: Config['oauth']['signingAlgorithm'], pathScopes: readonly string[] = []) {
  const pathScoped = new Set(pathScopes);
  const scopesSchema = z
    .array(z.string())
    .min(1, { message: 'must name at least one scope' })
    .superRefine((scopes, context) => {
      scopes.forEach((scope, index) => {
        const checked = PROTOCOL_SCOPES.has(scope) ? null : checkCatalogScope(scope, scopeCatalog, pathScoped);
        if (checked && !checked.ok) {
          context.addIssue({
            code: 'custom',
            path: [index],
            message: `${checked.problem} (known: ${[...Object.keys(scopeCatalog), ...PROTOCOL_SCOPES].join(', ')})`,
          });
        }
      });
    })
    .transform((scopes) => [...new Set(scopes)]);

  const redirectUriSchema = z
    .string()
    .max(MAX_REDIRECT_URI_LENGTH, { message: `must be at most ${MAX_REDIRECT_URI_LENGTH} characters` })
    .superRefine((value, context) => {
      const problem = redirectUriProblem(value);
      if (problem) context.addIssue({ code: 'custom', message: problem });
    });

  return z
    .object({
      clientId: z.string().regex(CLIENT_ID, { message: 'must be 1–128 characters: letters, digits and . _ : -, starting with a letter or digit' }).nullish(),
      name: z.string().trim().min(1, { message: 'must not be empty' }).max(200, { message: 'must be at most 200 characters' }),
      kind: z.enum(CLIENT_KINDS, { message: `must be one of ${CLIENT_KINDS.join(', ')}` }),
      scopes: scopesSchema.optional(),
      redirectUris: z.array(redirectUriSchema).max(20, { message: 'at most 20 redirect URIs' }).optional(),
      defaultResource: z
        .string()
        .superRefine((resource, context) => {
          if (!Object.hasOwn(resources, resource)) context.addIssue({ code: 'custom', message: `unknown resource "${resource}" (known: ${Object.keys(resources).join(', ')})` });
        })
        .nullish(),
      accessTokenTtlSeconds: z.number().int({ message: 'must be a whole number of seconds' }).min(60, { message: 'must be at least 60' }).max(86400, { message: 'must be at most 86400' }).nullish(),
      jwks: clientJwksSchema.nullish(),
      mayIntrospect: z.boolean({ message: 'must be true or false' }).optional(),
      introspectionSignedResponseAlg: z.string({ message: 'must be a JWS algorithm name' }).nullish(),
      introspectionEncryptedResponseAlg: z.unknown().optional(),
      introspectionEncryptedResponseEnc: z.unknown().optional(),
      tokenExchange: policySchema(scopeCatalog, resources, pathScoped).nullish(),
    })
    .superRefine((input, context) => {
      const redirectUris = input.redirectUris ?? [];
      if (input.kind === 'web' && redirectUris.length === 0) {
        context.addIssue({ code: 'custom', path: ['redirectUris'], message: 'a web client needs at least one redirect URI' });
      }
      if (input.kind !== 'web' && redirectUris.length > 0) {
        context.addIssue({ code: 'custom', path: ['redirectUris'], message: `only web clients have redirect URIs, not ${input.kind} clients` });
      }
      if (input.jwks && !isConfidential(input.kind)) {
        context.addIssue({ code: 'custom', path: ['jwks'], message: `a ${input.kind} client is public: it has no keys` });
      }
      for (const { field, message } of introspectionMetadataProblems(input, signingAlgorithm)) context.addIssue({ code: 'custom', path: [field], message });
      if (input.mayIntrospect && input.kind !== 'service' && input.kind !== 'resource_server') {
        context.addIssue({ code: 'custom', path: ['mayIntrospect'], message: `only service clients may be granted introspection (resource servers always have it), not ${input.kind} clients` });
      }
      if (input.tokenExchange && !EXCHANGING_KINDS.has(input.kind)) {
        context.addIssue({ code: 'custom', path: ['tokenExchange'], message: `a ${input.kind} client cannot authenticate, so it may not exchange tokens` });
      }
      if (!USER_FACING_KINDS.has(input.kind)) {
        (input.scopes ?? []).forEach((scope, index) => {
          if (PROTOCOL_SCOPES.has(scope)) {
            context.addIssue({ code: 'custom', path: ['scopes', index], message: `"${scope}" is only for clients acting for a user (device, web), not ${input.kind} clients` });
          }
        });
      }
    });
}

/** A token-exchange policy whose audiences are resources and whose scopes are in the catalog. */
/** A policy that fits the catalog and resources; each field is checked on its own, so one answer names every field that does not fit. */
function policySchema(scopeCatalog: Record<string, string>, resources: Config['oauth']['resources'], pathScoped: ReadonlySet<string>) {
  const { shape } = tokenExchangePolicySchema;
  const report = (problems: { index: number; message: string }[], context: z.RefinementCtx) => {
    for (const { index, message } of problems) context.addIssue({ code: 'custom', path: [index], message });
  };
  return tokenExchangePolicySchema.extend({
    audiences: shape.audiences.superRefine((audiences, context) => report(audienceProblems(audiences, resources), context)),
    scopes: shape.scopes.superRefine((scopes, context) => report(scopeProblems(scopes, scopeCatalog, pathScoped), context)),
  });
}

/** The input of setTokenExchange: a policy, or null to remove it. */
export function tokenExchangeInputSchema(scopeCatalog: Record<string, string>, resources: Config['oauth']['resources'], pathScopes: readonly string[] = []) {
  return policySchema(scopeCatalog, resources, new Set(pathScopes)).nullable();
}

/** The input of rotateKeys, under the same field name as at creation. */
export const rotateKeysSchema = z.object({ jwks: clientJwksSchema });

/** The algorithm a key without `alg` is imported for, to prove it parses. */
function defaultAlgorithm(key: ClientPublicJwk): string {
  if (key.kty === 'RSA') return 'RS256';
  if (key.kty === 'OKP') return 'EdDSA';
  return key.crv === 'P-384' ? 'ES384' : key.crv === 'P-521' ? 'ES512' : 'ES256';
}

/**
 * Proves each key imports with jose as a public key, for the algorithm it names (or the usual one
 * for its type): the schema checked it with node:crypto, but jose is what verifies assertions.
 */
export async function provePublicKeys(jwks: ClientJwks, field: string): Promise<void> {
  for (const [index, key] of jwks.keys.entries()) {
    let problem: string | null = null;
    try {
      const imported = await importJWK({ ...key }, key.alg ?? defaultAlgorithm(key));
      if (imported instanceof Uint8Array || imported.type !== 'public') problem = 'is not a public key';
    } catch (error) {
      problem = `is not a usable public key (${(error as Error).message})`;
    }
    if (problem) throw AppError.validation([{ field: `${field}.keys.${index}`, code: 'invalid_key', message: problem }]);
  }
}
