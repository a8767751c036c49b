import { readFile } from 'node:fs/promises';
import { importPKCS8 } from 'jose';
import * as oidc from 'openid-client';
import { redirectUriOf, type IdentityProvider } from '../config/identity-providers.ts';
import type { Claims } from './claim-mapping.ts';

// Tessera as a relying party of one upstream provider, through openid-client: discovery at first
// use (kept once it worked), the authorization URL (code + PKCE S256, state, nonce), and the
// callback's checks (RFC 9207 `iss` where the provider announces it, state, the ID token and
// its nonce) ending in the person's claims. GitHub (plain OAuth 2) answers from its user API.

/** The provider could not be reached, or answered with a server error (the page says: try later). */
export class ProviderUnavailableError extends Error {}

/** The provider answered the sign-in with an error (`access_denied`, …): the person's or theirs. */
export class ProviderRefusalError extends Error {
  readonly error: string;
  readonly description: string | undefined;

  constructor(error: string, description: string | undefined) {
    super(`the provider answered ${error}`);
    this.error = error;
    this.description = description;
  }
}

/** The answer failed a check (a wrong `iss`, a bad ID token, a code not accepted): nothing is trusted. */
export class ResponseRejectedError extends Error {}

export interface UpstreamIdentity {
  subject: string;
  claims: Claims;
}

const TIMEOUT_SECONDS = 10;

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Whether an error means the provider was not there (network, timeout, 5xx) rather than refusing. */
function unreachable(error: unknown): boolean {
  for (let cause: unknown = error, depth = 0; cause && depth < 5; cause = (cause as { cause?: unknown }).cause, depth += 1) {
    const { name, message, code, status } = cause as { name?: string; message?: string; code?: string; status?: number };
    if (name === 'TimeoutError' || name === 'AbortError' || (name === 'TypeError' && message === 'fetch failed')) return true;
    if (code && /^E(CONNREFUSED|CONNRESET|HOSTUNREACH|NETUNREACH|NOTFOUND|AI_AGAIN)$/.test(code)) return true;
    if (typeof status === 'number' && status >= 500) return true;
  }
  return false;
}

async function clientAuthentication(provider: IdentityProvider): Promise<oidc.ClientAuth> {
  if (provider.privateKey || provider.privateKeyFile) {
    const pem = provider.privateKey ?? (await readFile(provider.privateKeyFile!, 'utf8'));
    return oidc.PrivateKeyJwt(await importPKCS8(pem, provider.privateKeyAlgorithm));
  }
  const secret = provider.clientSecret ?? (await readFile(provider.clientSecretFile!, 'utf8')).replace(/\r?\n$/, '');
  // GitHub takes the secret in the body; OpenID providers all support HTTP Basic.
  return provider.protocol === 'oauth2' ? oidc.ClientSecretPost(secret) : oidc.ClientSecretBasic(secret);
}

export function createUpstreamClient(provider: IdentityProvider, tesseraIssuer: string) {
  const redirectUri = redirectUriOf(tesseraIssuer, provider.id);
  // Plain http only for a provider on this machine (tests, a local proxy).
  const insecure = new URL(provider.issuer).protocol === 'http:' && LOOPBACK.has(new URL(provider.issuer).hostname);
  let configuration: Promise<oidc.Configuration> | undefined;

  async function discover(): Promise<oidc.Configuration> {
    const auth = await clientAuthentication(provider);
    const metadata = { redirect_uris: [redirectUri], response_types: ['code'] };
    let config: oidc.Configuration;
    if (provider.protocol === 'oauth2') {
      const { authorization, token } = provider.endpoints!;
      config = new oidc.Configuration({ issuer: provider.issuer, authorization_endpoint: authorization, token_endpoint: token }, provider.clientId, metadata, auth);
    } else {
      try {
        config = await oidc.discovery(new URL(provider.issuer), provider.clientId, metadata, auth, { timeout: TIMEOUT_SECONDS, ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}) });
      } catch (error) {
        throw new ProviderUnavailableError(`discovery of ${provider.issuer} failed: ${(error as Error).message}`, { cause: error });
      }
    }
    config.timeout = TIMEOUT_SECONDS;
    if (insecure && provider.protocol === 'oauth2') oidc.allowInsecureRequests(config);
    return config;
  }

  /** The configuration, discovered once; a failed discovery is tried again at the next use. */
  function configured(): Promise<oidc.Configuration> {
    configuration ??= discover().catch((error: unknown) => {
      configuration = undefined;
      throw error;
    });
    return configuration;
  }

  async function userApi(config: oidc.Configuration, accessToken: string): Promise<UpstreamIdentity> {
    const get = async (url: string) => {
      const response = await oidc.fetchProtectedResource(config, accessToken, new URL(url), 'GET', undefined, new Headers({ accept: 'application/vnd.github+json' }));
      if (!response.ok) throw new ResponseRejectedError(`${url} answered ${response.status}`);
      return (await response.json()) as unknown;
    };
    const user = (await get(provider.endpoints!.user)) as Record<string, unknown>;
    if (typeof user.id !== 'number' && typeof user.id !== 'string') throw new ResponseRejectedError('the user API gave no id');
    const claims: Claims = { ...user, sub: String(user.id) };
    delete claims.email;
    if (provider.endpoints!.emails) {
      const emails = (await get(provider.endpoints!.emails)) as { email?: unknown; primary?: unknown; verified?: unknown }[];
      const primary = Array.isArray(emails) ? emails.find((entry) => entry.primary === true && entry.verified === true && typeof entry.email === 'string') : undefined;
      if (primary) Object.assign(claims, { email: primary.email, email_verified: true });
    }
    return { subject: String(user.id), claims };
  }

  return {
    provider,
    redirectUri,

    /** Discovers the provider now (the admin console's check, the start of a sign-in). */
    configured,

    /** Where to send the browser: code flow with PKCE S256, `state`, and a nonce for an OpenID provider. */
    async authorizationUrl(state: string, nonce: string, codeVerifier: string): Promise<URL> {
      const config = await configured();
      return oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: provider.scopes.join(' '),
        state,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        ...(provider.protocol === 'oidc' ? { nonce } : {}),
      });
    },

    /**
     * Checks the callback (`iss`, state, then the code at the token endpoint with the PKCE
     * verifier, the ID token with its nonce) and reads who signed in: the ID token's claims and
     * the UserInfo endpoint's (same subject), or GitHub's user API.
     */
    async finish(callbackUrl: URL, flow: { state: string; nonce: string; codeVerifier: string }): Promise<UpstreamIdentity> {
      const config = await configured();
      let tokens;
      try {
        tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
          pkceCodeVerifier: flow.codeVerifier,
          expectedState: flow.state,
          ...(provider.protocol === 'oidc' ? { expectedNonce: flow.nonce, idTokenExpected: true } : {}),
        });
      } catch (error) {
        if (error instanceof oidc.AuthorizationResponseError) throw new ProviderRefusalError(error.error, error.error_description);
        if (unreachable(error)) throw new ProviderUnavailableError(`the token request to ${provider.issuer} failed`, { cause: error });
        throw new ResponseRejectedError((error as Error).message, { cause: error });
      }
      try {
        if (provider.protocol === 'oauth2') return await userApi(config, tokens.access_token);
        const idClaims = tokens.claims()!;
        let claims: Claims = { ...idClaims };
        if (config.serverMetadata().userinfo_endpoint) {
          claims = { ...claims, ...(await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub)) };
        }
        return { subject: idClaims.sub, claims };
      } catch (error) {
        if (error instanceof ResponseRejectedError) throw error;
        if (unreachable(error)) throw new ProviderUnavailableError(`reading the user from ${provider.issuer} failed`, { cause: error });
        throw new ResponseRejectedError((error as Error).message, { cause: error });
      }
    },
  };
}

export type UpstreamClient = ReturnType<typeof createUpstreamClient>;
