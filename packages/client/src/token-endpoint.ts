import { TesseraClientError } from './errors.ts';
import type { DpopKey } from './dpop.ts';
import { basicAuthorization, oauthError, postForm, type FormAnswer, type Http } from './http.ts';
import { number, object, optional, ShapeError, parse, string, type Reader } from './shape.ts';

/** Tokens as the client keeps them. */
export interface TokenSet {
  accessToken: string;
  /** Absent when the login gave none (no `offline_access`, or client credentials). */
  refreshToken: string | undefined;
  /** Milliseconds since the epoch; undefined when the server did not say (`expires_in` absent). */
  expiresAt: number | undefined;
  /** The granted scopes, space-separated. */
  scope: string;
  /** `DPoP` when the access token is bound to the client's DPoP key (RFC 9449), else `Bearer`. */
  tokenType: 'Bearer' | 'DPoP';
}

interface TokenAnswer {
  access_token: string;
  token_type: string;
  expires_in?: number;
  refresh_token?: string;
  scope?: string;
}

const bearerOrDpop: Reader<string> = (value, path) => {
  const type = string()(value, path);
  if (type.toLowerCase() !== 'bearer' && type.toLowerCase() !== 'dpop') throw new ShapeError(path, 'neither a Bearer nor a DPoP token');
  return type;
};

const readTokenAnswer = object<TokenAnswer>({
  access_token: string({ nonEmpty: true }),
  token_type: bearerOrDpop,
  expires_in: optional(number({ min: 0 })),
  refresh_token: optional(string({ nonEmpty: true })),
  scope: optional(string()),
});

/** An OAuth error answer as a TesseraClientError with the server's own words. */
export function errorOf(answer: FormAnswer, what: string): TesseraClientError {
  const error = oauthError(answer.body);
  if (!error) return new TesseraClientError('oauth_error', `${what}: the issuer answered HTTP ${answer.status} without an OAuth error`, { status: answer.status });
  const description = error.description ? ` (${error.description})` : '';
  return new TesseraClientError('oauth_error', `${what}: ${error.error}${description}`, { oauthError: error.error, status: answer.status });
}

/**
 * A successful token answer as a TokenSet. `requestedScope` stands in when the answer names no
 * scope (RFC 6749 §5.1: then it is the requested one); `previous` keeps a refresh token that a
 * server which does not rotate them did not send again.
 */
export function tokenSetOf(answer: FormAnswer, now: number, requestedScope: string, previous?: TokenSet, dpop?: DpopKey): TokenSet {
  const parsed = parse(readTokenAnswer, answer.body);
  if (!parsed.success) throw new TesseraClientError('oauth_error', `the token endpoint answered HTTP ${answer.status} without a usable Bearer or DPoP token`, { status: answer.status });
  const body = parsed.data;
  const tokenType = body.token_type.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
  if (tokenType === 'DPoP' && !dpop) throw new TesseraClientError('oauth_error', 'the token endpoint answered a DPoP token to a request without a proof', { status: answer.status });
  return {
    accessToken: body.access_token,
    refreshToken: body.refresh_token ?? previous?.refreshToken,
    expiresAt: body.expires_in === undefined ? undefined : now + body.expires_in * 1000,
    scope: body.scope ?? requestedScope,
    tokenType,
  };
}

export interface ClientAuthentication {
  clientId: string;
  /** Present for a confidential client: sent with HTTP Basic (client_secret_basic). */
  clientSecret?: string | undefined;
}

/** The form fields and headers that identify the client: `client_id` for a public one, Basic otherwise. */
export function clientParameters(client: ClientAuthentication): { form: Record<string, string>; headers: Record<string, string> } {
  if (client.clientSecret === undefined) return { form: { client_id: client.clientId }, headers: {} };
  return { form: {}, headers: { authorization: basicAuthorization(client.clientId, client.clientSecret) } };
}

/**
 * Exchanges a refresh token (RFC 6749 §6). The server rotates it: the answer's refresh token
 * replaces the old one, which must never be presented again. `invalid_grant` means the login is
 * over (expired, revoked, or a rotated token was reused): `login_required`.
 */
export async function refreshTokens(
  httpClient: Http,
  tokenEndpoint: string,
  client: ClientAuthentication,
  current: TokenSet,
  now: () => number,
  dpop?: DpopKey,
): Promise<TokenSet> {
  if (!current.refreshToken) throw new TesseraClientError('login_required', 'the login has expired and has no refresh token (it was made without offline_access)');
  const { form, headers } = clientParameters(client);
  const answer = await postForm(httpClient, tokenEndpoint, { grant_type: 'refresh_token', refresh_token: current.refreshToken, ...form }, headers, dpop);
  if (answer.status !== 200) {
    const error = errorOf(answer, 'the refresh was refused');
    if (error.oauthError === 'invalid_grant') {
      throw new TesseraClientError('login_required', 'the saved login has expired or was revoked (the server refused its refresh token)', { oauthError: 'invalid_grant', status: answer.status });
    }
    throw error;
  }
  return tokenSetOf(answer, now(), current.scope, current, dpop);
}

/** RFC 7009: revokes a token; the server answers 200 whether or not it knew it. */
export async function revokeToken(
  httpClient: Http,
  revocationEndpoint: string,
  client: ClientAuthentication,
  token: string,
  hint: 'refresh_token' | 'access_token',
  dpop?: DpopKey,
): Promise<void> {
  const { form, headers } = clientParameters(client);
  const answer = await postForm(httpClient, revocationEndpoint, { token, token_type_hint: hint, ...form }, headers, dpop);
  if (answer.status !== 200) throw errorOf(answer, 'the revocation was refused');
}
