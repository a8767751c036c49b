import { asksForNonce, type DpopKey } from './dpop.ts';

/** Anything that hands out access tokens: the three `*Auth` classes of `@tessera/client`. */
export interface AccessTokenSource {
  /** A valid access token: the one at hand while it has more than a minute left, else a new one. */
  getAccessToken(): Promise<string>;
  /**
   * A new access token after `rejected` was answered 401: refreshed, unless a newer one than
   * `rejected` is already at hand (another request, or another process, renewed it first).
   */
  renewAccessToken(rejected: string): Promise<string>;
  /** The DPoP key `token` is bound to (RFC 9449), or undefined for a bearer token. */
  dpopKeyFor?(token: string): Promise<DpopKey | undefined>;
}

export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * A fetch that sends `Authorization: Bearer <access token>` — or, for a DPoP-bound token,
 * `Authorization: DPoP <access token>` with a proof for this request (RFC 9449 §7) — and, when the
 * answer is 401, renews the token once and sends the request once more. A 401 asking for a DPoP
 * nonce (§9) is first answered with the same token and a proof carrying the nonce. The request is
 * copied before each try so that its body can be sent again (a body given as a stream is buffered
 * for that).
 */
export function authenticatedFetch(source: AccessTokenSource, options: { fetch?: typeof fetch } = {}): FetchFunction {
  return async (input, init) => {
    const send = options.fetch ?? globalThis.fetch;
    const original = new Request(input, init);
    const attempt = async (token: string) => {
      const request = original.clone();
      const key = await source.dpopKeyFor?.(token);
      const headers = new Headers(request.headers);
      headers.set('authorization', `${key ? 'DPoP' : 'Bearer'} ${token}`);
      if (key) headers.set('dpop', await key.proof(request.method, request.url, token));
      const response = await send(new Request(request, { headers }));
      key?.rememberNonce(request.url, response);
      return { response, key };
    };
    /** The answer for this token, with one more try when the server asks for a nonce. */
    const answer = async (token: string) => {
      const first = await attempt(token);
      if (!first.key || !asksForNonce(first.response.status, first.response.headers)) return first.response;
      await first.response.body?.cancel();
      return (await attempt(token)).response;
    };
    const token = await source.getAccessToken();
    const first = await answer(token);
    if (first.status !== 401) return first;
    await first.body?.cancel();
    return answer(await source.renewAccessToken(token));
  };
}

/** What every `*Auth` class shares: `auth.fetch(url, init)`, an authenticated fetch. */
export abstract class TokenAuth implements AccessTokenSource {
  abstract getAccessToken(): Promise<string>;
  abstract renewAccessToken(rejected: string): Promise<string>;
  /** The DPoP key a token is bound to; none by default (bearer tokens). */
  dpopKeyFor(_token: string): Promise<DpopKey | undefined> {
    return Promise.resolve(undefined);
  }

  /**
   * The headers that authorize one request with the current access token: `Authorization: Bearer`,
   * or `Authorization: DPoP` and a `DPoP` proof for this method and URL (single use: one request).
   */
  async authorizationHeaders(method: string, url: string): Promise<Record<string, string>> {
    const token = await this.getAccessToken();
    const key = await this.dpopKeyFor(token);
    return key ? { authorization: `DPoP ${token}`, dpop: await key.proof(method, url, token) } : { authorization: `Bearer ${token}` };
  }

  /** fetch, with the Bearer token (or the DPoP token and its proof); on a 401 the token is renewed and the request sent once more. */
  readonly fetch: FetchFunction = (input, init) => authenticatedFetch(this, { fetch: this.fetchImplementation() })(input, init);

  /** The fetch the requests go through (the one given in the options, else the global one). */
  protected abstract fetchImplementation(): typeof fetch;
}

/**
 * Runs one renewal at a time per object: concurrent callers of `getAccessToken` share the refresh
 * in flight instead of each spending the (single-use) refresh token.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
