import { SerialQueue, TokenAuth } from './authenticated-fetch.ts';
import { discover, normaliseIssuer, type IssuerMetadata } from './discovery.ts';
import { deviceLogin, type DevicePrompt } from './device-login.ts';
import { TesseraClientError } from './errors.ts';
import { http, type Http, type HttpOptions } from './http.ts';
import { fetchIdentity, type Identity } from './identity.ts';
import { refreshTokens, type TokenSet } from './token-endpoint.ts';
import { DpopKey, offersDpop } from './dpop.ts';

/** Options every `*Auth` class takes. */
export interface AuthOptions extends HttpOptions {
  /** A token with less than this left is renewed before use; default 60. */
  minValiditySeconds?: number;
  /** Milliseconds since the epoch; default Date.now. */
  clock?: () => number;
}

export const DEFAULT_MIN_VALIDITY_SECONDS = 60;

/** Whether an access token expiring at `expiresAt` is still good for `minValiditySeconds`. */
export function stillValid(expiresAt: number | undefined, now: number, minValiditySeconds: number): boolean {
  return expiresAt === undefined || expiresAt - now > minValiditySeconds * 1000;
}

/** Writes the prompt to standard error: the page, the code, and the page with the code in it. */
export function printDevicePrompt(prompt: DevicePrompt): void {
  const complete = prompt.verificationUriComplete ? `\n(or open ${prompt.verificationUriComplete})` : '';
  process.stderr.write(`To sign in, open ${prompt.verificationUri} and enter the code ${prompt.userCode}${complete}\n`);
}

export interface DeviceGrantAuthOptions extends AuthOptions {
  issuer: string;
  /** A `device` client of the issuer (public: no secret). */
  clientId: string;
  /** Default: read and offline_access (for a refresh token). */
  scopes?: string[];
  /** Shows the person where to go and which code to enter; default: printDevicePrompt. */
  onPrompt?: (prompt: DevicePrompt) => void | Promise<void>;
  /** Cancels a login waiting for approval. */
  signal?: AbortSignal;
  /** Bind the tokens to a key pair kept in memory (DPoP, RFC 9449) when the issuer offers it. Default true. */
  dpop?: boolean;
}

/**
 * Interactive: logs the person in with the device grant on first use (and again whenever the
 * refresh token stops working), keeps the tokens in memory and refreshes them before they expire.
 */
export class DeviceGrantAuth extends TokenAuth {
  readonly issuer: string;
  readonly clientId: string;
  readonly scopes: string[];
  readonly #options: DeviceGrantAuthOptions;
  readonly #http: Http;
  readonly #clock: () => number;
  readonly #queue = new SerialQueue();
  #metadata: Promise<IssuerMetadata> | undefined;
  #tokens: TokenSet | undefined;
  #key: DpopKey | undefined;

  constructor(options: DeviceGrantAuthOptions) {
    super();
    this.issuer = normaliseIssuer(options.issuer);
    this.clientId = options.clientId;
    this.scopes = options.scopes ?? ['read', 'offline_access'];
    this.#options = options;
    this.#http = http(options);
    this.#clock = options.clock ?? Date.now;
  }

  /** The tokens at hand, if logged in. */
  get tokens(): TokenSet | undefined {
    return this.#tokens;
  }

  /** The issuer's metadata, read once (again after a failure). */
  metadata(): Promise<IssuerMetadata> {
    this.#metadata ??= discover(this.#http, this.issuer).catch((error: unknown) => {
      this.#metadata = undefined;
      throw error;
    });
    return this.#metadata;
  }

  /** Runs the device login now (also when already logged in) and keeps its tokens. */
  login(): Promise<TokenSet> {
    return this.#queue.run(() => this.#login());
  }

  async #login(): Promise<TokenSet> {
    const metadata = await this.metadata();
    // A new login, a new key: what the old one bound is over.
    this.#key = this.#options.dpop !== false && offersDpop(metadata) ? await DpopKey.generate() : undefined;
    this.#tokens = await deviceLogin(this.#http, metadata, {
      dpop: this.#key,
      clientId: this.clientId,
      scopes: this.scopes,
      onPrompt: this.#options.onPrompt ?? printDevicePrompt,
      clock: this.#clock,
      signal: this.#options.signal,
    });
    return this.#tokens;
  }

  async #renew(): Promise<TokenSet> {
    if (!this.#tokens?.refreshToken) return this.#login();
    try {
      this.#tokens = await refreshTokens(this.#http, (await this.metadata()).token_endpoint, { clientId: this.clientId }, this.#tokens, this.#clock, this.#key);
      return this.#tokens;
    } catch (error) {
      if (error instanceof TesseraClientError && error.code === 'login_required') return this.#login();
      throw error;
    }
  }

  getAccessToken(): Promise<string> {
    return this.#queue.run(async () => {
      const minValidity = this.#options.minValiditySeconds ?? DEFAULT_MIN_VALIDITY_SECONDS;
      if (this.#tokens && stillValid(this.#tokens.expiresAt, this.#clock(), minValidity)) return this.#tokens.accessToken;
      return (await this.#renew()).accessToken;
    });
  }

  renewAccessToken(rejected: string): Promise<string> {
    return this.#queue.run(async () => {
      if (this.#tokens && this.#tokens.accessToken !== rejected) return this.#tokens.accessToken;
      return (await this.#renew()).accessToken;
    });
  }

  override async dpopKeyFor(token: string): Promise<DpopKey | undefined> {
    return this.#tokens?.accessToken === token && this.#tokens.tokenType === 'DPoP' ? this.#key : undefined;
  }

  /** Who the access token belongs to, as the issuer says. */
  identity(): Promise<Identity> {
    return fetchIdentity(this.fetch, this.issuer);
  }

  protected fetchImplementation(): typeof fetch {
    return this.#http.fetch;
  }
}
