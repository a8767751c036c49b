import { TesseraClientError } from './errors.ts';
import { asksForNonce, type DpopKey } from './dpop.ts';
import { object, optional, parse, string } from './shape.ts';

/** How the client library talks HTTP: which fetch, and how long it waits for one answer. */
export interface HttpOptions {
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** Per request; default 15 000 ms. */
  timeoutMs?: number;
}

export interface Http {
  fetch: typeof fetch;
  timeoutMs: number;
}

export const DEFAULT_TIMEOUT_MS = 15_000;

export function http(options: HttpOptions = {}): Http {
  return { fetch: options.fetch ?? globalThis.fetch, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS };
}

/** "ECONNREFUSED", "ENOTFOUND", "timed out after 15 s": the reason a request got no answer. */
function reason(error: unknown, timeoutMs: number): string {
  const err = error as Error & { cause?: unknown };
  if (err.name === 'TimeoutError') return `no answer within ${Math.round(timeoutMs / 1000)} s`;
  let cause: unknown = err.cause ?? err;
  if (cause instanceof AggregateError && cause.errors.length) cause = cause.errors[0];
  const withCode = cause as { code?: unknown; message?: unknown };
  return typeof withCode.code === 'string' ? withCode.code : String(withCode.message ?? err.message);
}

/** One request to the issuer; no answer at all is `issuer_unreachable`. Redirects are not followed. */
export async function send(client: Http, url: string, init: RequestInit): Promise<Response> {
  try {
    return await client.fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(client.timeoutMs) });
  } catch (error) {
    throw new TesseraClientError('issuer_unreachable', `cannot reach ${new URL(url).origin} (${reason(error, client.timeoutMs)})`, { cause: error });
  }
}

/** The answer's JSON object, or undefined when it is not one. */
export async function jsonObject(response: Response): Promise<Record<string, unknown> | undefined> {
  const text = await response.text();
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A gateway in front of the issuer saying the issuer is not there. */
export function isGatewayFailure(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}

const readOAuthError = object<{ error: string; error_description?: string }>({ error: string(), error_description: optional(string()) });

/** The RFC 6749 §5.2 error of an answer, if it carries one. */
export function oauthError(body: Record<string, unknown> | undefined): { error: string; description: string | undefined } | undefined {
  const parsed = parse(readOAuthError, body);
  return parsed.success ? { error: parsed.data.error, description: parsed.data.error_description } : undefined;
}

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before they go into HTTP Basic. */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  const encode = (value: string) => new URLSearchParams([['v', value]]).toString().slice(2);
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`).toString('base64')}`;
}

export interface FormAnswer {
  status: number;
  body: Record<string, unknown> | undefined;
}

/**
 * POSTs a form (RFC 6749's endpoints all take one) and reads the JSON answer. With a DPoP key, the
 * request carries a proof of it (RFC 9449 §5), and is sent once more with the server's nonce when
 * the server asks for one (`use_dpop_nonce`, §8).
 */
export async function postForm(client: Http, url: string, form: Record<string, string>, headers: Record<string, string> = {}, dpop?: DpopKey): Promise<FormAnswer> {
  for (let attempt = 1; ; attempt += 1) {
    const response = await send(client, url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers, ...(dpop ? { dpop: await dpop.proof('POST', url) } : {}) },
      body: new URLSearchParams(form).toString(),
    });
    if (isGatewayFailure(response.status)) {
      await response.body?.cancel();
      throw new TesseraClientError('issuer_unreachable', `${new URL(url).origin} is not answering (HTTP ${response.status} from ${new URL(url).pathname})`, { status: response.status });
    }
    dpop?.rememberNonce(url, response);
    const body = await jsonObject(response);
    if (dpop && attempt === 1 && asksForNonce(response.status, response.headers, body)) continue;
    return { status: response.status, body };
  }
}
