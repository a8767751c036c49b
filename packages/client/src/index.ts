/**
 * `@tessera/client`: log in to a Tessera issuer and call APIs with its tokens (docs/cli.md).
 * DeviceGrantAuth (a person at a terminal), SavedDeviceGrantAuth (the login `tessera login`
 * saves) and ClientCredentialsAuth (a backend) each have `getAccessToken()` and `fetch()`, which
 * renews the token and retries once on a 401. Failures are TesseraClientError.
 */
export { authenticatedFetch, TokenAuth, type AccessTokenSource, type FetchFunction } from './authenticated-fetch.ts';
export { ClientCredentialsAuth, type ClientCredentialsAuthOptions } from './client-credentials-auth.ts';
export { CredentialsFile, defaultCredentialsPath, PROFILE_NAME, type Credentials, type SavedLogin } from './credentials-file.ts';
export { DeviceGrantAuth, printDevicePrompt, type AuthOptions, type DeviceGrantAuthOptions } from './device-grant-auth.ts';
export type { DevicePrompt } from './device-login.ts';
export { discover, type IssuerMetadata } from './discovery.ts';
export { DpopKey, type DpopPrivateJwk } from './dpop.ts';
export { TesseraClientError, type TesseraClientErrorCode } from './errors.ts';
export type { FileLockOptions } from './file-lock.ts';
export type { Identity } from './identity.ts';
export { SavedDeviceGrantAuth, type LoginOptions, type LogoutResult, type SavedDeviceGrantAuthOptions } from './saved-device-grant-auth.ts';
export type { TokenSet } from './token-endpoint.ts';
