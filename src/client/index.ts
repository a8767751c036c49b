/**
 * `tessera/client`: log in to a Tessera issuer and call APIs with its tokens.
 *
 * - DeviceGrantAuth: a person at a terminal, interactive, tokens in memory.
 * - SavedDeviceGrantAuth: the login `tessera login` saves (credentials file, one profile),
 *   refreshed automatically and shared safely between processes.
 * - ClientCredentialsAuth: a backend acting for itself with its client secret.
 *
 * Each has `getAccessToken()` and `fetch(url, init)`, which adds the Bearer token and, on a 401,
 * renews the token once and retries once; `authenticatedFetch(auth)` makes the same function.
 * Failures are TesseraClientError, whose `code` says what to do.
 */
export { authenticatedFetch, TokenAuth, type AccessTokenSource, type FetchFunction } from './authenticated-fetch.ts';
export { ClientCredentialsAuth, type ClientCredentialsAuthOptions } from './client-credentials-auth.ts';
export { CredentialsFile, defaultCredentialsPath, type Credentials, type SavedLogin } from './credentials-file.ts';
export { DeviceGrantAuth, printDevicePrompt, type AuthOptions, type DeviceGrantAuthOptions } from './device-grant-auth.ts';
export type { DevicePrompt } from './device-login.ts';
export { discover, type IssuerMetadata } from './discovery.ts';
export { TesseraClientError, type TesseraClientErrorCode } from './errors.ts';
export type { FileLockOptions } from './file-lock.ts';
export type { Identity } from './identity.ts';
export { SavedDeviceGrantAuth, type LoginOptions, type LogoutResult, type SavedDeviceGrantAuthOptions } from './saved-device-grant-auth.ts';
export type { TokenSet } from './token-endpoint.ts';
