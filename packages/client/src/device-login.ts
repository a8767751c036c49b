import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IssuerMetadata } from './discovery.ts';
import { TesseraClientError } from './errors.ts';
import { oauthError, postForm, type Http } from './http.ts';
import { number, object, optional, parse, string, url } from './shape.ts';
import { errorOf, tokenSetOf, type TokenSet } from './token-endpoint.ts';
import type { DpopKey } from './dpop.ts';

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** What the person must be shown: where to go, and the code to type there. */
export interface DevicePrompt {
  verificationUri: string;
  /** The same page with the code filled in (for a QR code or a browser), when the server gives one. */
  verificationUriComplete: string | undefined;
  userCode: string;
  expiresInSeconds: number;
  intervalSeconds: number;
}

export interface DeviceLoginOptions {
  clientId: string;
  scopes: string[];
  /** Shows the prompt to the person; the polling starts once it has returned. */
  onPrompt: (prompt: DevicePrompt) => void | Promise<void>;
  clock: () => number;
  /** Cancels the login (e.g. on Ctrl-C). */
  signal?: AbortSignal | undefined;
  /** The key the tokens are bound to (DPoP, RFC 9449): every poll carries a proof of it. */
  dpop?: DpopKey | undefined;
}

/** RFC 8628 §3.2: the device authorization answer. */
interface DeviceAnswer {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval?: number;
}

const readDeviceAnswer = object<DeviceAnswer>({
  device_code: string({ nonEmpty: true }),
  user_code: string({ nonEmpty: true }),
  verification_uri: url,
  verification_uri_complete: optional(url),
  expires_in: number({ positive: true }),
  interval: optional(number({ positive: true })),
});

/** RFC 8628 §3.5: a slow_down adds 5 s to the interval, for this and every later poll. */
const SLOW_DOWN_SECONDS = 5;
/** Polls that get no answer in a row before the login gives up (each one doubles the interval). */
const UNANSWERED_POLLS_TOLERATED = 3;

function duration(seconds: number): string {
  return seconds < 120 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/**
 * The device authorization grant (RFC 8628), with PKCE (S256) when the issuer offers it: asks
 * for a code, shows it, and polls at the server's interval (slower after each slow_down) until
 * the person approves or denies, or the code expires.
 */
export async function deviceLogin(client: Http, metadata: IssuerMetadata, options: DeviceLoginOptions): Promise<TokenSet> {
  const { clientId, clock, signal } = options;
  if (!metadata.device_authorization_endpoint) throw new TesseraClientError('invalid_issuer', `${metadata.issuer} does not offer the device login (no device_authorization_endpoint)`);
  const scope = options.scopes.join(' ');
  const challenge = metadata.code_challenge_methods_supported?.includes('S256') ? pkce() : undefined;
  // Counted from before the request, so that it never falls after the server's own expiry.
  const requestedAt = clock();
  const started = await postForm(client, metadata.device_authorization_endpoint, {
    client_id: clientId,
    ...(scope ? { scope } : {}),
    ...(challenge ? { code_challenge: challenge.challenge, code_challenge_method: 'S256' } : {}),
  });
  if (started.status !== 200) {
    const error = errorOf(started, 'the issuer refused to start the login');
    if (error.oauthError === 'invalid_client') {
      throw new TesseraClientError('oauth_error', `the issuer does not know the client "${clientId}" (or it is not a device client): use --client-id, or ask the operator to run \`tessera client create --kind device --id ${clientId}\``, {
        oauthError: 'invalid_client',
        status: started.status,
      });
    }
    throw error;
  }
  const parsed = parse(readDeviceAnswer, started.body);
  if (!parsed.success) throw new TesseraClientError('oauth_error', 'the issuer answered the device login request without a usable code', { status: started.status });
  const device = parsed.data;
  const deadline = requestedAt + device.expires_in * 1000;
  let interval = device.interval ?? 5;
  await options.onPrompt({
    verificationUri: device.verification_uri,
    verificationUriComplete: device.verification_uri_complete,
    userCode: device.user_code,
    expiresInSeconds: device.expires_in,
    intervalSeconds: interval,
  });

  const expired = (status?: number) =>
    new TesseraClientError('expired_token', `the code expired before it was approved (it was valid for ${duration(device.expires_in)})`, { oauthError: 'expired_token', ...(status ? { status } : {}) });
  let unanswered = 0;
  for (;;) {
    // Polls stop at the code's expiry: the answers after it are not worth waiting for.
    const remaining = deadline - clock();
    if (remaining <= 0) throw expired();
    await sleep(Math.min(interval * 1000, remaining), undefined, signal ? { signal } : undefined);
    if (clock() >= deadline) throw expired();
    let answer;
    try {
      answer = await postForm(client, metadata.token_endpoint, {
        grant_type: DEVICE_CODE_GRANT,
        device_code: device.device_code,
        client_id: clientId,
        ...(challenge ? { code_verifier: challenge.verifier } : {}),
      }, {}, options.dpop);
    } catch (error) {
      // RFC 8628 §3.5: back off on a poll that got no answer; give up after a few in a row.
      if (!(error instanceof TesseraClientError) || error.code !== 'issuer_unreachable' || ++unanswered >= UNANSWERED_POLLS_TOLERATED) throw error;
      interval *= 2;
      continue;
    }
    unanswered = 0;
    if (answer.status === 200) return tokenSetOf(answer, clock(), scope, undefined, options.dpop);
    const error = oauthError(answer.body)?.error;
    if (error === 'authorization_pending') continue;
    if (error === 'slow_down') {
      interval += SLOW_DOWN_SECONDS;
      continue;
    }
    if (error === 'access_denied') throw new TesseraClientError('access_denied', 'the login was denied in the browser', { oauthError: error, status: answer.status });
    if (error === 'expired_token') throw expired(answer.status);
    throw errorOf(answer, 'the login failed');
  }
}
