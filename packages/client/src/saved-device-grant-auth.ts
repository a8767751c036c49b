import { SerialQueue, TokenAuth } from './authenticated-fetch.ts';
import { CredentialsFile, PROFILE_NAME, type SavedLogin } from './credentials-file.ts';
import { DEFAULT_MIN_VALIDITY_SECONDS, printDevicePrompt, stillValid, type AuthOptions } from './device-grant-auth.ts';
import { deviceLogin, type DevicePrompt } from './device-login.ts';
import { discover, normaliseIssuer } from './discovery.ts';
import { TesseraClientError } from './errors.ts';
import type { FileLockOptions } from './file-lock.ts';
import { http, type Http } from './http.ts';
import { fetchIdentity, type Identity } from './identity.ts';
import { refreshTokens, revokeToken, type TokenSet } from './token-endpoint.ts';
import { DpopKey, offersDpop } from './dpop.ts';

export interface SavedDeviceGrantAuthOptions extends AuthOptions {
  /** Default: `default`. */
  profile?: string;
  /** Default: $XDG_CONFIG_HOME/tessera/credentials.json (~/.config/tessera/credentials.json). */
  file?: string;
  lock?: FileLockOptions;
}

export interface LoginOptions {
  issuer: string;
  clientId: string;
  /** offline_access is always added: a saved login needs a refresh token. Default: read. */
  scopes?: string[];
  onPrompt?: (prompt: DevicePrompt) => void | Promise<void>;
  signal?: AbortSignal;
  /**
   * Bind the tokens to a new key pair kept with the login (DPoP, RFC 9449), when the issuer offers
   * DPoP. Default true; false saves bearer tokens.
   */
  dpop?: boolean;
}

export interface LogoutResult {
  /** Whether there was a saved login. */
  loggedIn: boolean;
  /** Whether the server was told to revoke it; false with `error` when it could not be reached. */
  revoked: boolean;
  error?: TesseraClientError;
}

function tokenSetOf(saved: SavedLogin): TokenSet | undefined {
  if (!saved.accessToken) return undefined;
  return {
    accessToken: saved.accessToken,
    refreshToken: saved.refreshToken ?? undefined,
    expiresAt: saved.expiresAt === null ? undefined : Date.parse(saved.expiresAt),
    scope: saved.scope,
    tokenType: saved.tokenType === 'DPoP' ? 'DPoP' : 'Bearer',
  };
}

/** The login to save; its DPoP key stays with it (a login saved before DPoP has none, and stays bearer). */
function savedOf(issuer: string, clientId: string, tokens: TokenSet, key: DpopKey | undefined): SavedLogin {
  return {
    issuer,
    clientId,
    refreshToken: tokens.refreshToken ?? null,
    accessToken: tokens.accessToken,
    expiresAt: tokens.expiresAt === undefined ? null : new Date(tokens.expiresAt).toISOString(),
    scope: tokens.scope,
    ...(key ? { tokenType: tokens.tokenType, dpopKey: key.toJwk() } : {}),
  };
}

/**
 * A login saved in the credentials file (one profile of it), refreshed automatically: every
 * process using the same profile shares it. A refresh happens under the file's lock — read,
 * refresh, write — because the server rotates refresh tokens: two processes refreshing with the
 * same one would end the login. A token that is still fresh is read without the lock.
 */
export class SavedDeviceGrantAuth extends TokenAuth {
  readonly profile: string;
  readonly file: CredentialsFile;
  readonly #http: Http;
  readonly #clock: () => number;
  readonly #minValiditySeconds: number;
  readonly #queue = new SerialQueue();
  /** The saved DPoP key, read once (its nonces live with it), by its private part. */
  #key: { d: string; key: DpopKey } | undefined;
  /** The DPoP-bound access token last handed out, and its key. */
  #bound: { token: string; key: DpopKey } | undefined;

  constructor(options: SavedDeviceGrantAuthOptions = {}) {
    super();
    this.profile = options.profile ?? 'default';
    if (!PROFILE_NAME.test(this.profile)) throw new TesseraClientError('credentials_file', `"${this.profile}" is not a profile name (letters, digits, ".", "_", "-")`);
    this.file = new CredentialsFile(options.file, options.lock);
    this.#http = http(options);
    this.#clock = options.clock ?? Date.now;
    this.#minValiditySeconds = options.minValiditySeconds ?? DEFAULT_MIN_VALIDITY_SECONDS;
  }

  /** The saved login of this profile, if any (tokens null once the server refused them). */
  saved(): Promise<SavedLogin | undefined> {
    return this.file.profile(this.profile);
  }

  /**
   * Runs the device login and saves it in this profile (replacing what was there). The lock is
   * not held while the person approves, only while the file is written.
   */
  async login(options: LoginOptions): Promise<SavedLogin> {
    const issuer = normaliseIssuer(options.issuer);
    const requested = options.scopes?.length ? options.scopes : ['read'];
    const scopes = requested.includes('offline_access') ? requested : [...requested, 'offline_access'];
    const metadata = await discover(this.#http, issuer);
    const key = options.dpop !== false && offersDpop(metadata) ? await DpopKey.generate() : undefined;
    const tokens = await deviceLogin(this.#http, metadata, {
      clientId: options.clientId,
      scopes,
      onPrompt: options.onPrompt ?? printDevicePrompt,
      clock: this.#clock,
      signal: options.signal,
      dpop: key,
    });
    const saved = savedOf(issuer, options.clientId, tokens, key);
    await this.file.update(this.profile, async () => ({ profile: saved, result: undefined }));
    return saved;
  }

  /** The DPoP key saved with a login, if it has one. */
  async #keyOf(saved: SavedLogin): Promise<DpopKey | undefined> {
    const jwk = saved.dpopKey;
    if (jwk === undefined) return undefined;
    if (this.#key?.d !== jwk.d) this.#key = { d: jwk.d, key: await DpopKey.fromJwk(jwk) };
    return this.#key.key;
  }

  /** The access token to hand out, remembered with its key when it is DPoP-bound. */
  async #handOut(saved: SavedLogin, tokens: TokenSet): Promise<string> {
    const key = tokens.tokenType === 'DPoP' ? await this.#keyOf(saved) : undefined;
    if (tokens.tokenType === 'DPoP' && !key) throw new TesseraClientError('credentials_file', `the saved login (profile "${this.profile}") holds DPoP tokens without their key: log in again`);
    this.#bound = key ? { token: tokens.accessToken, key } : undefined;
    return tokens.accessToken;
  }

  override async dpopKeyFor(token: string): Promise<DpopKey | undefined> {
    return this.#bound?.token === token ? this.#bound.key : undefined;
  }

  #notLoggedIn(saved: SavedLogin | undefined): TesseraClientError {
    return new TesseraClientError(
      'login_required',
      saved ? `the saved login (profile "${this.profile}") has expired or was revoked` : `not logged in (profile "${this.profile}")`,
    );
  }

  /**
   * Under the lock: the saved token if `usable` says it still is (another process may have just
   * refreshed it), else a refresh whose rotated refresh token is saved before the lock is let go.
   * A refused refresh token is removed from the file (issuer and client stay, for the next login).
   */
  async #refresh(usable: (tokens: TokenSet) => boolean): Promise<string> {
    const outcome = await this.file.update(this.profile, async (saved): Promise<{ profile: SavedLogin | undefined; result: string | TesseraClientError }> => {
      const tokens = saved && tokenSetOf(saved);
      if (!saved || !tokens) return { profile: saved, result: this.#notLoggedIn(saved) };
      if (usable(tokens)) return { profile: saved, result: await this.#handOut(saved, tokens) };
      const metadata = await discover(this.#http, saved.issuer);
      // A login with a key refreshes with a proof of it: its refresh token is bound to it (RFC 9449 §5).
      const key = await this.#keyOf(saved);
      try {
        const refreshed = await refreshTokens(this.#http, metadata.token_endpoint, { clientId: saved.clientId }, tokens, this.#clock, key);
        const profile = savedOf(saved.issuer, saved.clientId, refreshed, key);
        return { profile, result: await this.#handOut(profile, refreshed) };
      } catch (error) {
        if (!(error instanceof TesseraClientError && error.code === 'login_required')) throw error;
        const refused =
          error.oauthError === 'invalid_grant'
            ? new TesseraClientError('login_required', `the saved login (profile "${this.profile}") has expired or was revoked: the server refused its refresh token`, {
                oauthError: error.oauthError,
                status: error.status,
              })
            : error;
        return { profile: { ...saved, refreshToken: null, accessToken: null, expiresAt: null }, result: refused };
      }
    });
    if (outcome instanceof TesseraClientError) throw outcome;
    return outcome;
  }

  getAccessToken(): Promise<string> {
    return this.#queue.run(async () => {
      const fresh = (tokens: TokenSet) => stillValid(tokens.expiresAt, this.#clock(), this.#minValiditySeconds);
      const saved = await this.saved();
      const tokens = saved && tokenSetOf(saved);
      if (!saved || !tokens) throw this.#notLoggedIn(saved);
      if (fresh(tokens)) return this.#handOut(saved, tokens);
      return this.#refresh(fresh);
    });
  }

  renewAccessToken(rejected: string): Promise<string> {
    return this.#queue.run(async () => {
      const newerAndFresh = (tokens: TokenSet) => tokens.accessToken !== rejected && stillValid(tokens.expiresAt, this.#clock(), this.#minValiditySeconds);
      return this.#refresh(newerAndFresh);
    });
  }

  /**
   * Revokes the login at the server (its refresh token, which ends the access tokens too) and
   * deletes the profile. The profile is deleted even when the server cannot be reached; `error`
   * then says why the login may still be valid there until it expires.
   */
  logout(): Promise<LogoutResult> {
    return this.file.update(this.profile, async (saved): Promise<{ profile: undefined; result: LogoutResult }> => {
      if (!saved) return { profile: undefined, result: { loggedIn: false, revoked: false } };
      const token = saved.refreshToken ?? saved.accessToken;
      if (!token) return { profile: undefined, result: { loggedIn: true, revoked: true } };
      try {
        const metadata = await discover(this.#http, saved.issuer);
        if (!metadata.revocation_endpoint) throw new TesseraClientError('invalid_issuer', `${saved.issuer} offers no revocation endpoint`);
        await revokeToken(this.#http, metadata.revocation_endpoint, { clientId: saved.clientId }, token, saved.refreshToken ? 'refresh_token' : 'access_token', await this.#keyOf(saved));
        return { profile: undefined, result: { loggedIn: true, revoked: true } };
      } catch (error) {
        if (!(error instanceof TesseraClientError)) throw error;
        return { profile: undefined, result: { loggedIn: true, revoked: false, error } };
      }
    });
  }

  /** Who the saved login is, as the issuer says (refreshing first if needed). */
  async identity(): Promise<Identity> {
    const saved = await this.saved();
    if (!saved?.accessToken) throw this.#notLoggedIn(saved);
    return fetchIdentity(this.fetch, saved.issuer);
  }

  protected fetchImplementation(): typeof fetch {
    return this.#http.fetch;
  }
}
