import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { RawHandler } from './raw-http.ts';

/**
 * The start's check that ISSUER leads to this process (docs/production.md#tls-and-proxies): it
 * fetches the issuer's discovery document carrying a random mark made for this start, and only
 * this process answers with that mark. Unreachable, or answered by another server: a warning
 * saying what was tried and what to set. Never fatal (a proxy may serve the issuer from where
 * this host cannot reach it) and never awaited by the start.
 */

/** The request header carrying the start's mark, and the answer header repeating it. */
export const ISSUER_CHECK_HEADER = 'tessera-issuer-check';

/** How long the check waits for an answer. */
export const ISSUER_CHECK_TIMEOUT_MS = 5000;

export type IssuerCheckResult =
  | { outcome: 'this-process' }
  | { outcome: 'unreachable'; reason: string }
  | { outcome: 'another-server'; status: number }
  | { outcome: 'stopped' };

export interface IssuerSelfCheck {
  /** `handler`, with a GET carrying this start's mark answered with the mark (whatever else it answers). */
  handle(handler: RawHandler): RawHandler;
  /** Fetches the issuer's discovery URL and warns unless this process answered. Never rejects. */
  run(listening: string, signal: AbortSignal): Promise<IssuerCheckResult>;
}

export function createIssuerSelfCheck(options: { issuer: string; logger: Logger; timeoutMs?: number }): IssuerSelfCheck {
  const { issuer, logger, timeoutMs = ISSUER_CHECK_TIMEOUT_MS } = options;
  const mark = randomBytes(16).toString('base64url');
  const markBytes = Buffer.from(mark);
  const carriesMark = (value: string | string[] | undefined | null): boolean => {
    if (typeof value !== 'string' || value.length !== mark.length) return false;
    const bytes = Buffer.from(value);
    return bytes.length === markBytes.length && timingSafeEqual(bytes, markBytes);
  };
  // OpenID Connect Discovery §4: the document is at the issuer's URL followed by this path.
  const tried = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;

  return {
    handle(handler) {
      return (req, res) => {
        // The hot endpoints are POSTs: they pay one comparison.
        if (req.method === 'GET' && carriesMark(req.headers[ISSUER_CHECK_HEADER])) res.setHeader(ISSUER_CHECK_HEADER, mark);
        handler(req, res);
      };
    },

    async run(listening, signal) {
      let result: IssuerCheckResult;
      try {
        const res = await fetch(tried, {
          headers: { [ISSUER_CHECK_HEADER]: mark },
          redirect: 'manual',
          signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        });
        await res.body?.cancel();
        result = carriesMark(res.headers.get(ISSUER_CHECK_HEADER)) ? { outcome: 'this-process' } : { outcome: 'another-server', status: res.status };
      } catch (error) {
        if (signal.aborted) return { outcome: 'stopped' };
        result = { outcome: 'unreachable', reason: describeFailure(error, timeoutMs) };
      }
      const advice = `Clients are sent to the issuer: set ISSUER to the URL by which they reach this process (it listens on ${listening})`;
      if (result.outcome === 'this-process') {
        logger.debug({ issuer, tried }, 'the issuer leads to this process');
      } else if (result.outcome === 'unreachable') {
        logger.warn(
          { issuer, tried, listening, reason: result.reason },
          `ISSUER ${issuer} does not reach this process: GET ${tried} failed (${result.reason}). ${advice}; if a proxy serves it and cannot be reached from this host, ignore this.`,
        );
      } else if (result.outcome === 'another-server') {
        logger.warn(
          { issuer, tried, listening, status: result.status },
          `ISSUER ${issuer} leads to another server: GET ${tried} was answered ${result.status}, not by this process. ${advice}, or point the proxy in front of it at this process.`,
        );
      }
      return result;
    },
  };
}

/** The reason a fetch failed, as an operator can act on it ("ECONNREFUSED", "ENOTFOUND", a timeout). */
function describeFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof DOMException && error.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
