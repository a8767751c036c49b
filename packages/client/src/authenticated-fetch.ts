/** Anything that hands out access tokens: the three `*Auth` classes of `@tessera/client`. */
export interface AccessTokenSource {
  /** A valid access token: the one at hand while it has more than a minute left, else a new one. */
  getAccessToken(): Promise<string>;
  /**
   * A new access token after `rejected` was answered 401: refreshed, unless a newer one than
   * `rejected` is already at hand (another request, or another process, renewed it first).
   */
  renewAccessToken(rejected: string): Promise<string>;
}

export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * A fetch that sends `Authorization: Bearer <access token>` and, when the answer is 401, renews
 * the token once and sends the request once more. The request is copied before the first try so
 * that its body can be sent again (a body given as a stream is buffered for that).
 */
export function authenticatedFetch(source: AccessTokenSource, options: { fetch?: typeof fetch } = {}): FetchFunction {
  return async (input, init) => {
    const send = options.fetch ?? globalThis.fetch;
    const original = new Request(input, init);
    const attempt = (request: Request, token: string) => {
      const headers = new Headers(request.headers);
      headers.set('authorization', `Bearer ${token}`);
      return send(new Request(request, { headers }));
    };
    const token = await source.getAccessToken();
    const first = await attempt(original.clone(), token);
    if (first.status !== 401) return first;
    await first.body?.cancel();
    return attempt(original, await source.renewAccessToken(token));
  };
}

/** What every `*Auth` class shares: `auth.fetch(url, init)`, an authenticated fetch. */
export abstract class TokenAuth implements AccessTokenSource {
  abstract getAccessToken(): Promise<string>;
  abstract renewAccessToken(rejected: string): Promise<string>;

  /** fetch, with the Bearer token; on a 401 the token is renewed and the request sent once more. */
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
