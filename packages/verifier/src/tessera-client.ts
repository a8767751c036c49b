/** RFC 9701: the media type a signed introspection answer is asked for and sent as. */
export const INTROSPECTION_JWT_MEDIA_TYPE = 'application/token-introspection+jwt';

/** Tessera could not be asked (unreachable, timed out, or an unexpected answer): fail closed. */
export class TesseraUnavailableError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TesseraUnavailableError';
  }
}

/** The parts of the discovery document (RFC 8414) the verifier uses. */
export interface IssuerMetadata {
  issuer: string;
  introspection_endpoint?: string;
  jwks_uri?: string;
  /** Tessera's own members: the header names it takes credentials from (TESSERA_SESSION_HEADER_ALIASES, …). */
  tessera_session_header_aliases?: string[];
  tessera_api_key_header?: string;
  tessera_api_user_header?: string;
}

/** RFC 7662 §2.2, as Tessera answers it. Unknown members are ignored. */
export interface IntrospectionAnswer {
  active: boolean;
  scope?: string;
  client_id?: string;
  username?: string;
  /** The owner's e-mail (personal tokens of accounts that have one). */
  email?: string;
  sub?: string;
  token_type?: string;
  /** Which kind of Tessera credential (access_token, refresh_token, personal_access_token, session). */
  credential_kind?: string;
  /** RFC 7800 confirmation: present on a sender-constrained (DPoP, mTLS) token. */
  cnf?: unknown;
  exp?: number;
  iat?: number;
  iss?: string;
  aud?: string | string[];
}

/**
 * The shape checks of the two answers (the package depends on jose alone, so no schema library):
 * the answer typed, or why it is not one. Members of the wrong type are refused, not dropped.
 */
type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

function wrongMember(answer: Record<string, unknown>, members: Record<string, (value: unknown) => boolean>): string | undefined {
  for (const [name, valid] of Object.entries(members)) {
    if (answer[name] !== undefined && !valid(answer[name])) return `${name} has the wrong type`;
  }
  return undefined;
}

const isString = (value: unknown) => typeof value === 'string';
const isUrl = (value: unknown) => typeof value === 'string' && URL.canParse(value);
export const HEADER_NAME = /^[A-Za-z0-9-]+$/;
const isHeaderName = (value: unknown) => typeof value === 'string' && HEADER_NAME.test(value);
const isNumber = (value: unknown) => typeof value === 'number' && Number.isFinite(value);

export function checkMetadata(answer: unknown): Checked<IssuerMetadata> {
  if (!isObject(answer)) return { ok: false, problem: 'not a JSON object' };
  if (typeof answer.issuer !== 'string') return { ok: false, problem: 'no issuer' };
  const problem = wrongMember(answer, {
    introspection_endpoint: isUrl,
    jwks_uri: isUrl,
    tessera_session_header_aliases: (value) => Array.isArray(value) && value.every(isHeaderName),
    tessera_api_key_header: isHeaderName,
    tessera_api_user_header: isHeaderName,
  });
  if (problem) return { ok: false, problem };
  const value: Record<string, unknown> = { issuer: answer.issuer };
  for (const name of ['introspection_endpoint', 'jwks_uri', 'tessera_session_header_aliases', 'tessera_api_key_header', 'tessera_api_user_header']) {
    if (answer[name] !== undefined) value[name] = answer[name];
  }
  return { ok: true, value: value as unknown as IssuerMetadata };
}

const INTROSPECTION_MEMBERS: Record<string, (value: unknown) => boolean> = {
  scope: isString,
  client_id: isString,
  username: isString,
  email: isString,
  sub: isString,
  token_type: isString,
  credential_kind: isString,
  exp: isNumber,
  iat: isNumber,
  iss: isString,
  aud: (value) => typeof value === 'string' || (Array.isArray(value) && value.every(isString)),
};

export function checkIntrospection(answer: unknown): Checked<IntrospectionAnswer> {
  if (!isObject(answer)) return { ok: false, problem: 'not a JSON object' };
  if (typeof answer.active !== 'boolean') return { ok: false, problem: 'active is not a boolean' };
  const problem = wrongMember(answer, INTROSPECTION_MEMBERS);
  if (problem) return { ok: false, problem };
  const value: Record<string, unknown> = { active: answer.active };
  for (const name of [...Object.keys(INTROSPECTION_MEMBERS), 'cnf']) if (answer[name] !== undefined) value[name] = answer[name];
  return { ok: true, value: value as unknown as IntrospectionAnswer };
}

export interface TesseraClientOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  clientAuthMethod: 'client_secret_basic' | 'client_secret_post';
  /** Skip discovery for these. */
  introspectionEndpoint?: string | undefined;
  jwksUri?: string | undefined;
  timeoutMs: number;
  fetch: typeof fetch;
}

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before they go into HTTP Basic. */
function formEncode(value: string): string {
  return new URLSearchParams([['v', value]]).toString().slice(2);
}

/** What the verifier asks Tessera: its metadata (once) and introspections. */
export function createTesseraClient(options: TesseraClientOptions) {
  const { issuer, timeoutMs } = options;
  let metadata: Promise<IssuerMetadata> | undefined;

  async function send(url: string, init: RequestInit, what: string): Promise<Response> {
    let response: Response;
    try {
      response = await options.fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      throw new TesseraUnavailableError(`${what}: ${timedOut ? `no answer within ${timeoutMs} ms` : `request failed (${(error as Error).message})`}`, { cause: error });
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new TesseraUnavailableError(`${what}: Tessera answered ${response.status}${response.status === 401 ? ' (check the resource server\'s client id and secret)' : ''}`);
    }
    return response;
  }

  async function request(url: string, init: RequestInit, what: string): Promise<unknown> {
    const response = await send(url, init, what);
    try {
      return await response.json();
    } catch (error) {
      throw new TesseraUnavailableError(`${what}: the answer is not JSON`, { cause: error });
    }
  }

  /** A signed answer (RFC 9701): the JWT as sent, once `verify` has checked it, and its answer. */
  async function requestSigned(url: string, init: RequestInit, what: string, verify: (jwt: string) => Promise<unknown>): Promise<{ jwt: string; answer: unknown }> {
    const response = await send(url, init, what);
    const type = response.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
    if (type !== INTROSPECTION_JWT_MEDIA_TYPE) {
      await response.body?.cancel();
      throw new TesseraUnavailableError(`${what}: asked for a signed answer, got ${type ?? 'no content type'} (a Tessera without RFC 9701 answers?)`);
    }
    const jwt = (await response.text()).trim();
    try {
      return { jwt, answer: await verify(jwt) };
    } catch (error) {
      if (error instanceof TesseraUnavailableError) throw new TesseraUnavailableError(`${what}: ${error.message}`, { cause: error });
      throw error;
    }
  }

  /** The discovery document (RFC 8414), fetched once; a failure is not remembered. */
  function discover(): Promise<IssuerMetadata> {
    metadata ??= (async () => {
      const url = `${issuer}/.well-known/openid-configuration`;
      const checked = checkMetadata(await request(url, { headers: { accept: 'application/json' } }, `discovery at ${url}`));
      if (!checked.ok) throw new TesseraUnavailableError(`discovery at ${url}: unexpected document (${checked.problem})`);
      // RFC 8414 §3.3: the document must name exactly the issuer it was fetched for.
      if (checked.value.issuer !== issuer) throw new TesseraUnavailableError(`discovery at ${url}: the document is for the issuer ${checked.value.issuer}, not ${issuer}`);
      return checked.value;
    })();
    metadata.catch(() => (metadata = undefined));
    return metadata;
  }

  return {
    /**
     * The header names Tessera takes credentials from, as its discovery document publishes them
     * (lower case; the session headers begin with x-session). A Tessera too old to publish them
     * is unavailable for this purpose: guessing the names would silently miss credentials.
     */
    async credentialHeaders(): Promise<{ apiKeyHeader: string; apiUserHeader: string; sessionHeaders: string[] }> {
      const document = await discover();
      const { tessera_session_header_aliases: aliases, tessera_api_key_header: keyHeader, tessera_api_user_header: userHeader } = document;
      if (!aliases || !keyHeader || !userHeader) {
        throw new TesseraUnavailableError(`Tessera's discovery document does not publish its credential header names (tessera_api_key_header, …): this Tessera predates them, so give the names as options instead of credentialHeaders: 'discovery'`);
      }
      return { apiKeyHeader: keyHeader.toLowerCase(), apiUserHeader: userHeader.toLowerCase(), sessionHeaders: ['x-session', ...aliases.map((name) => name.toLowerCase())] };
    },

    async jwksUri(): Promise<string> {
      const uri = options.jwksUri ?? (await discover()).jwks_uri;
      if (!uri) throw new TesseraUnavailableError('Tessera\'s discovery document has no jwks_uri');
      return uri;
    },

    /**
     * POST {introspection_endpoint} (RFC 7662) as the resource server's client. With
     * `verifySigned`, the answer is asked for signed (RFC 9701) and comes with the JWT it was in.
     */
    async introspect(token: string, verifySigned?: (jwt: string) => Promise<unknown>): Promise<{ answer: IntrospectionAnswer; jwt?: string }> {
      const endpoint = options.introspectionEndpoint ?? (await discover()).introspection_endpoint;
      if (!endpoint) throw new TesseraUnavailableError('Tessera\'s discovery document has no introspection_endpoint');
      const form = new URLSearchParams({ token });
      const headers: Record<string, string> = { accept: verifySigned ? INTROSPECTION_JWT_MEDIA_TYPE : 'application/json', 'content-type': 'application/x-www-form-urlencoded' };
      if (options.clientAuthMethod === 'client_secret_basic') {
        headers.authorization = `Basic ${Buffer.from(`${formEncode(options.clientId)}:${formEncode(options.clientSecret)}`).toString('base64')}`;
      } else {
        form.set('client_id', options.clientId);
        form.set('client_secret', options.clientSecret);
      }
      const init = { method: 'POST', headers, body: form.toString() };
      const what = `introspection at ${endpoint}`;
      const signed = verifySigned ? await requestSigned(endpoint, init, what, verifySigned) : undefined;
      const checked = checkIntrospection(signed ? signed.answer : await request(endpoint, init, what));
      if (!checked.ok) throw new TesseraUnavailableError(`${what}: unexpected answer (${checked.problem})`);
      return signed ? { answer: checked.value, jwt: signed.jwt } : { answer: checked.value };
    },
  };
}

export type TesseraClient = ReturnType<typeof createTesseraClient>;
