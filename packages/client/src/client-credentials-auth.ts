import { SerialQueue, TokenAuth } from './authenticated-fetch.ts';
import { DEFAULT_MIN_VALIDITY_SECONDS, stillValid, type AuthOptions } from './device-grant-auth.ts';
import { discover, normaliseIssuer, type IssuerMetadata } from './discovery.ts';
import { http, postForm, type Http } from './http.ts';
import { clientParameters, errorOf, tokenSetOf, type TokenSet } from './token-endpoint.ts';
import { DpopKey, offersDpop } from './dpop.ts';

export interface ClientCredentialsAuthOptions extends AuthOptions {
  issuer: string;
  /** A `service` client of the issuer. */
  clientId: string;
  /** Sent with HTTP Basic (client_secret_basic). */
  clientSecret: string;
  /** Default: none named, so the issuer's default (read). */
  scopes?: string[];
  /** Bind the tokens to a key pair kept in memory (DPoP, RFC 9449) when the issuer offers it. Default false. */
  dpop?: boolean;
}

/**
 * A backend acting for itself: the client credentials grant (RFC 6749 §4.4) with the client's
 * secret. The token is kept in memory and a new one is asked for shortly before it expires.
 */
export class ClientCredentialsAuth extends TokenAuth {
  readonly issuer: string;
  readonly clientId: string;
  readonly #secret: string;
  readonly #scope: string;
  readonly #http: Http;
  readonly #clock: () => number;
  readonly #minValiditySeconds: number;
  readonly #queue = new SerialQueue();
  #metadata: Promise<IssuerMetadata> | undefined;
  #tokens: TokenSet | undefined;
  readonly #wantsDpop: boolean;
  #key: Promise<DpopKey | undefined> | undefined;

  constructor(options: ClientCredentialsAuthOptions) {
    super();
    this.#wantsDpop = options.dpop === true;
    this.issuer = normaliseIssuer(options.issuer);
    this.clientId = options.clientId;
    this.#secret = options.clientSecret;
    this.#scope = (options.scopes ?? []).join(' ');
    this.#http = http(options);
    this.#clock = options.clock ?? Date.now;
    this.#minValiditySeconds = options.minValiditySeconds ?? DEFAULT_MIN_VALIDITY_SECONDS;
  }

  async #request(): Promise<string> {
    this.#metadata ??= discover(this.#http, this.issuer).catch((error: unknown) => {
      this.#metadata = undefined;
      throw error;
    });
    const metadata = await this.#metadata;
    this.#key ??= this.#wantsDpop && offersDpop(metadata) ? DpopKey.generate() : Promise.resolve(undefined);
    const key = await this.#key;
    const { form, headers } = clientParameters({ clientId: this.clientId, clientSecret: this.#secret });
    const answer = await postForm(this.#http, metadata.token_endpoint, { grant_type: 'client_credentials', ...(this.#scope ? { scope: this.#scope } : {}), ...form }, headers, key);
    if (answer.status !== 200) throw errorOf(answer, 'the issuer refused the client credentials');
    this.#tokens = tokenSetOf(answer, this.#clock(), this.#scope, undefined, key);
    return this.#tokens.accessToken;
  }

  getAccessToken(): Promise<string> {
    return this.#queue.run(async () => {
      if (this.#tokens && stillValid(this.#tokens.expiresAt, this.#clock(), this.#minValiditySeconds)) return this.#tokens.accessToken;
      return this.#request();
    });
  }

  renewAccessToken(rejected: string): Promise<string> {
    return this.#queue.run(async () => (this.#tokens && this.#tokens.accessToken !== rejected ? this.#tokens.accessToken : this.#request()));
  }

  override async dpopKeyFor(token: string): Promise<DpopKey | undefined> {
    return this.#tokens?.accessToken === token && this.#tokens.tokenType === 'DPoP' ? this.#key : undefined;
  }

  protected fetchImplementation(): typeof fetch {
    return this.#http.fetch;
  }
}
