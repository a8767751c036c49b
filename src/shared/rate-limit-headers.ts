/**
 * The headers every 429 carries, wherever it is answered: `Retry-After` and the `RateLimit-*` trio
 * (draft-ietf-httpapi-ratelimit-headers): the limit that was reached, nothing remaining, and the
 * seconds until it resets. Whole seconds, at least 1.
 */
export function rateLimitHeaders(limit: number, retryAfterSeconds: number): Record<string, string> {
  const seconds = String(Math.max(1, Math.ceil(retryAfterSeconds)));
  return { 'Retry-After': seconds, 'RateLimit-Limit': String(limit), 'RateLimit-Remaining': '0', 'RateLimit-Reset': seconds };
}
