import { tokenFormat } from '../credentials/token-format.ts';
import { rateLimitHeaders } from '../shared/rate-limit-headers.ts';

export interface FailedLookupLimitOptions {
  /** Failed lookups a source may make at once, and again per `windowSeconds`. */
  failures: number;
  windowSeconds: number;
  /** Most sources remembered; past it, the ones whose failures are forgotten go first, then the oldest. */
  maxSources?: number;
  clock?: () => number;
}

export interface FailedLookupLimiter {
  /**
   * Milliseconds until this source may fail again; 0 while it may. A source that never failed costs
   * one Map read: nothing else happens on the way to an answer that is found.
   */
  retryAfterMs(source: string): number;
  /** Counts a failed lookup; true when this one used up the source's allowance (it is limited from now). */
  failed(source: string): boolean;
  /**
   * What the endpoints ask: milliseconds until `token` may be looked up for `source`, nonzero only
   * for a personal token from a limited source (other credentials are answered as ever). A source
   * that never failed costs one Map read.
   */
  personalTokenWaitMs(source: string, token: string): number;
  /** Counts a personal-token lookup in the stores that found nothing; true when it limited the source. */
  personalTokenMissed(source: string, token: string): boolean;
  /** The headers of a refusal: Retry-After and the RateLimit trio. */
  refusalHeaders(retryAfterMs: number): Record<string, string>;
}

const isPersonalToken = (token: string) => tokenFormat.parse(token) === 'personal_access_token';

/**
 * Failed lookups per source (an introspecting client, a client address), in process: a token
 * bucket of `failures` refilled over `windowSeconds`, kept as the time it is full again (GCRA).
 * Only failures cost anything: a Map update each. Guessing personal tokens costs Tessera a database
 * query per guess; this makes guessing slow without a Redis round trip on any request. Per process,
 * so N nodes allow N times the budget (docs/resource-servers.md#limits-on-guessing).
 */
export function createFailedLookupLimiter(options: FailedLookupLimitOptions): FailedLookupLimiter {
  const clock = options.clock ?? Date.now;
  const windowMs = options.windowSeconds * 1000;
  const intervalMs = windowMs / options.failures;
  const maxSources = options.maxSources ?? 100_000;
  /** source → when its bucket is full again (ms since the epoch). */
  const fullAt = new Map<string, number>();

  const waitFor = (full: number, now: number) => Math.max(0, full + intervalMs - now - windowMs);

  function forgetSome(now: number) {
    for (const [source, full] of fullAt) if (full <= now) fullAt.delete(source);
    // Still full: the oldest entries go (Map keeps insertion order; an update re-inserts).
    for (const source of fullAt.keys()) {
      if (fullAt.size < maxSources) break;
      fullAt.delete(source);
    }
  }

  function retryAfterMs(source: string): number {
    const full = fullAt.get(source);
    return full === undefined ? 0 : waitFor(full, clock());
  }

  function failed(source: string): boolean {
    const now = clock();
    const previous = fullAt.get(source);
    const full = Math.max(previous ?? now, now) + intervalMs;
    if (previous === undefined) {
      if (fullAt.size >= maxSources) forgetSome(now);
    } else {
      fullAt.delete(source);
    }
    fullAt.set(source, full);
    return waitFor(full, now) > 0 && (previous === undefined || waitFor(previous, now) === 0);
  }

  return {
    retryAfterMs,
    failed,
    personalTokenWaitMs(source, token) {
      const waitMs = retryAfterMs(source);
      return waitMs > 0 && isPersonalToken(token) ? waitMs : 0;
    },
    personalTokenMissed: (source, token) => isPersonalToken(token) && failed(source),
    refusalHeaders: (waitMs) => rateLimitHeaders(options.failures, waitMs / 1000),
  };
}
