// Upstream identity providers for the browser sign-in (docs/sign-in-providers.md): what an
// operator declares in `identityProviders`, the presets that fill in what a known service needs,
// and the checks that run at boot (zod, so a bad entry stops the process naming the key).
import { z } from 'zod';

export const IDENTITY_PROVIDER_ID = /^[a-z0-9][a-z0-9-]{0,31}$/;

export const PRESETS = ['oidc', 'orcid', 'cilogon', 'keycloak', 'github'] as const;
export type IdentityProviderPreset = (typeof PRESETS)[number];

/** A claim value that grants scopes: any value of `claim` (a string or an array of strings) equal to `value`. */
const scopeRuleSchema = z.object({
  claim: z.string().min(1).max(200),
  value: z.string().min(1).max(1000),
  scopes: z.array(z.string().min(1)).min(1),
});

const httpsOrLocal = z.url({ protocol: /^https?$/ }).refine((value) => !value.endsWith('/') || new URL(value).pathname === '/', { message: 'must not end with a slash' });

/** Paths under /login/ that are pages of their own (the password reset, the second step), so no provider may be named so. */
const RESERVED_IDS = new Set(['forgot', 'reset', 'second-factor']);

/** What may be written in the configuration for one provider. */
export const identityProviderInputSchema = z.object({
  /** Appears in the redirect URI `<ISSUER>/login/<id>/callback` and in the accounts' links. */
  id: z
    .string()
    .regex(IDENTITY_PROVIDER_ID, { message: 'lower-case letters, digits and -, at most 32, starting with a letter or digit' })
    .refine((id) => !RESERVED_IDS.has(id), { message: `is a page of its own (/login/<id>): not ${[...RESERVED_IDS].join(', ')}` }),
  /** The button's label: "Sign in with <name>". */
  name: z.string().min(1).max(80),
  preset: z.enum(PRESETS).default('oidc'),
  /** The provider's issuer (discovery at `<issuer>/.well-known/openid-configuration`); presets give it for fixed services. */
  issuer: httpsOrLocal.optional(),
  clientId: z.string().min(1).max(500),
  /** A client secret (client_secret_basic), or the path of a file holding it. */
  clientSecret: z.string().min(1).max(2000).optional(),
  clientSecretFile: z.string().min(1).optional(),
  /** A private key (PEM, PKCS#8) for private_key_jwt, or the path of a file holding it. */
  privateKey: z.string().min(1).optional(),
  privateKeyFile: z.string().min(1).optional(),
  /** The key's algorithm (the provider must accept it): RS256 by default. */
  privateKeyAlgorithm: z.enum(['RS256', 'PS256', 'ES256', 'EdDSA']).default('RS256'),
  scopes: z.array(z.string().min(1).max(200)).optional(),
  /** Plain OAuth 2 endpoints (the github preset): no discovery, no ID token. */
  endpoints: z
    .object({
      authorization: httpsOrLocal,
      token: httpsOrLocal,
      user: httpsOrLocal,
      emails: httpsOrLocal.optional(),
    })
    .optional(),
  claims: z
    .object({
      /** Claims tried in order for a new account's username (an e-mail gives its local part). */
      username: z.array(z.string().min(1)).min(1).optional(),
      /** The claim holding the e-mail address (kept only when verified). */
      email: z.string().min(1).optional(),
    })
    .default({}),
  /** Create an account at the first sign-in of an unknown identity (otherwise only linked identities sign in). */
  createAccounts: z.boolean().default(true),
  /** A new account's allowed scopes before the rules add theirs: accounts.defaultScopes when unset. */
  defaultScopes: z.array(z.string().min(1)).optional(),
  /** Claim values that grant allowed scopes (only scopes of the catalog). */
  scopeRules: z.array(scopeRuleSchema).default([]),
});

export type IdentityProviderInput = z.infer<typeof identityProviderInputSchema>;

/** One provider as the service uses it: the preset applied, every member settled. */
export interface IdentityProvider {
  id: string;
  name: string;
  preset: IdentityProviderPreset;
  /** OpenID Connect (discovery, ID token) or plain OAuth 2 (the github preset). */
  protocol: 'oidc' | 'oauth2';
  issuer: string;
  clientId: string;
  clientSecret: string | null;
  clientSecretFile: string | null;
  privateKey: string | null;
  privateKeyFile: string | null;
  privateKeyAlgorithm: 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
  scopes: string[];
  endpoints: { authorization: string; token: string; user: string; emails: string | null } | null;
  claims: { username: string[]; email: string };
  createAccounts: boolean;
  defaultScopes: string[] | null;
  scopeRules: { claim: string; value: string; scopes: string[] }[];
}

interface PresetDefaults {
  protocol: 'oidc' | 'oauth2';
  issuer?: string;
  scopes: string[];
  usernameClaims: string[];
  endpoints?: { authorization: string; token: string; user: string; emails: string };
}

/**
 * What each preset fills in (docs/sign-in-providers.md has the why of each). An operator's own
 * member always wins, so a preset can be pointed at a test instance or a proxy.
 */
export const PRESET_DEFAULTS: Record<IdentityProviderPreset, PresetDefaults> = {
  oidc: { protocol: 'oidc', scopes: ['openid', 'email', 'profile'], usernameClaims: ['preferred_username', 'email'] },
  // ORCID's OpenID Connect: the subject is the ORCID iD; e-mail is rarely released.
  orcid: { protocol: 'oidc', issuer: 'https://orcid.org', scopes: ['openid'], usernameClaims: ['sub'] },
  // CILogon: one client for thousands of eduGAIN and InCommon IdPs; eppn names the person at their home.
  cilogon: { protocol: 'oidc', issuer: 'https://cilogon.org', scopes: ['openid', 'email', 'profile', 'org.cilogon.userinfo'], usernameClaims: ['eppn', 'email'] },
  // A Keycloak realm (EGI Check-in, an institution's own): the issuer is the realm's URL.
  keycloak: { protocol: 'oidc', scopes: ['openid', 'email', 'profile'], usernameClaims: ['preferred_username', 'email'] },
  // GitHub: plain OAuth 2 and its REST API (no ID token); the subject is the numeric user id.
  github: {
    protocol: 'oauth2',
    issuer: 'https://github.com/login/oauth',
    scopes: ['read:user', 'user:email'],
    usernameClaims: ['login'],
    endpoints: { authorization: 'https://github.com/login/oauth/authorize', token: 'https://github.com/login/oauth/access_token', user: 'https://api.github.com/user', emails: 'https://api.github.com/user/emails' },
  },
};

/** The preset applied to what the operator wrote; problems as (path, message) for the schema to report. */
export function resolveIdentityProvider(input: IdentityProviderInput): { provider: IdentityProvider | null; problems: { path: (string | number)[]; message: string }[] } {
  const preset = PRESET_DEFAULTS[input.preset];
  const problems: { path: (string | number)[]; message: string }[] = [];
  const issuer = input.issuer ?? preset.issuer;
  if (!issuer) problems.push({ path: ['issuer'], message: `is required for the ${input.preset} preset (the provider's issuer URL)` });
  const secrets = [input.clientSecret, input.clientSecretFile, input.privateKey, input.privateKeyFile].filter((value) => value !== undefined).length;
  if (secrets !== 1) problems.push({ path: ['clientSecret'], message: 'give exactly one of clientSecret, clientSecretFile, privateKey, privateKeyFile' });
  if (preset.protocol === 'oauth2' && (input.privateKey || input.privateKeyFile)) problems.push({ path: ['privateKey'], message: `the ${input.preset} preset authenticates with a client secret` });
  if (input.endpoints && preset.protocol === 'oidc') problems.push({ path: ['endpoints'], message: 'only for plain OAuth 2 (the github preset): OpenID providers are discovered from their issuer' });
  if (problems.length) return { provider: null, problems };
  const endpoints = preset.protocol === 'oauth2' ? { ...preset.endpoints!, ...input.endpoints } : null;
  return {
    problems,
    provider: {
      id: input.id,
      name: input.name,
      preset: input.preset,
      protocol: preset.protocol,
      issuer: issuer!,
      clientId: input.clientId,
      clientSecret: input.clientSecret ?? null,
      clientSecretFile: input.clientSecretFile ?? null,
      privateKey: input.privateKey ?? null,
      privateKeyFile: input.privateKeyFile ?? null,
      privateKeyAlgorithm: input.privateKeyAlgorithm,
      scopes: input.scopes ?? preset.scopes,
      endpoints: endpoints && { ...endpoints, emails: endpoints.emails ?? null },
      claims: { username: input.claims.username ?? preset.usernameClaims, email: input.claims.email ?? 'email' },
      createAccounts: input.createAccounts,
      defaultScopes: input.defaultScopes ?? null,
      scopeRules: input.scopeRules,
    },
  };
}

/** The `identityProviders` list: each entry resolved, ids unique. */
export const identityProvidersSchema = z
  .array(identityProviderInputSchema)
  .default([])
  .transform((inputs, context) => {
    const seen = new Set<string>();
    const providers: IdentityProvider[] = [];
    inputs.forEach((input, index) => {
      if (seen.has(input.id)) context.addIssue({ code: 'custom', path: [index, 'id'], message: 'declared twice' });
      seen.add(input.id);
      const { provider, problems } = resolveIdentityProvider(input);
      for (const problem of problems) context.addIssue({ code: 'custom', path: [index, ...problem.path], message: problem.message });
      if (provider) providers.push(provider);
    });
    return providers;
  });

/** Where the provider sends the browser back: what an operator registers there. */
export function redirectUriOf(issuer: string, providerId: string): string {
  return `${issuer.replace(/\/$/, '')}/login/${providerId}/callback`;
}
