/**
 * What went wrong, as a program can act on it:
 * - `issuer_unreachable`: no answer from the issuer (network, timeout, 502/503/504);
 * - `invalid_issuer`: an answer, but not the issuer's metadata (wrong URL, issuer mismatch);
 * - `access_denied`: the person denied the device login;
 * - `expired_token`: the device code expired before anyone approved it;
 * - `login_required`: no saved login, or its refresh token is expired or revoked: log in again;
 * - `oauth_error`: any other OAuth error answer (`oauthError` says which);
 * - `credentials_file`: the credentials file cannot be read, written or locked.
 */
export type TesseraClientErrorCode = 'issuer_unreachable' | 'invalid_issuer' | 'access_denied' | 'expired_token' | 'login_required' | 'oauth_error' | 'credentials_file';

/** The one error type of `@tessera/client`. `message` is written for the person at the terminal. */
export class TesseraClientError extends Error {
  readonly code: TesseraClientErrorCode;
  /** The OAuth `error` of the answer, when there was one (`invalid_grant`, `invalid_scope`, …). */
  readonly oauthError: string | undefined;
  /** The HTTP status of the answer, when there was one. */
  readonly status: number | undefined;

  constructor(code: TesseraClientErrorCode, message: string, options: { oauthError?: string; status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TesseraClientError';
    this.code = code;
    this.oauthError = options.oauthError;
    this.status = options.status;
  }
}
