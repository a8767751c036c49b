import { z } from 'zod';

/** Tessera could not be asked (unreachable, timed out, or an unexpected answer): fail closed. */
export class TesseraUnavailableError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TesseraUnavailableError';
  }
}

const metadataSchema = z.object({
  issuer: z.string(),
  introspection_endpoint: z.url().optional(),
  jwks_uri: z.url().optional(),
});
export type IssuerMetadata = z.infer<typeof metadataSchema>;

/** RFC 7662 §2.2, as Tessera answers it. Unknown members are ignored. */
const introspectionSchema = z.object({
  active: z.boolean(),
  scope: z.string().optional(),
  client_id: z.string().optional(),
  username: z.string().optional(),
  /** The owner's e-mail (personal tokens of accounts that have one). */
  email: z.string().optional(),
  sub: z.string().optional(),
  token_type: z.string().optional(),
  /** Which kind of Tessera credential (access_token, refresh_token, personal_access_token, session). */
  credential_kind: z.string().optional(),
  /** RFC 7800 confirmation: present on a sender-constrained (DPoP, mTLS) token. */
  cnf: z.unknown().optional(),
  exp: z.number().optional(),
  iat: z.number().optional(),
  iss: z.string().optional(),
  aud: z.union([z.string(), z.array(z.string())]).optional(),
});
export type IntrospectionAnswer = z.infer<typeof introspectionSchema>;

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

  async function request(url: string, init: RequestInit, what: string): Promise<unknown> {
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
    try {
      return await response.json();
    } catch (error) {
      throw new TesseraUnavailableError(`${what}: the answer is not JSON`, { cause: error });
    }
  }

  /** The discovery document (RFC 8414), fetched once; a failure is not remembered. */
  function discover(): Promise<IssuerMetadata> {
    metadata ??= (async () => {
      const url = `${issuer}/.well-known/openid-configuration`;
      const parsed = metadataSchema.safeParse(await request(url, { headers: { accept: 'application/json' } }, `discovery at ${url}`));
      if (!parsed.success) throw new TesseraUnavailableError(`discovery at ${url}: unexpected document (${parsed.error.issues[0]?.message})`);
      // RFC 8414 §3.3: the document must name exactly the issuer it was fetched for.
      if (parsed.data.issuer !== issuer) throw new TesseraUnavailableError(`discovery at ${url}: the document is for the issuer ${parsed.data.issuer}, not ${issuer}`);
      return parsed.data;
    })();
    metadata.catch(() => (metadata = undefined));
    return metadata;
  }

  return {
    async jwksUri(): Promise<string> {
      const uri = options.jwksUri ?? (await discover()).jwks_uri;
      if (!uri) throw new TesseraUnavailableError('Tessera\'s discovery document has no jwks_uri');
      return uri;
    },

    /** POST {introspection_endpoint} (RFC 7662) as the resource server's client. */
    async introspect(token: string): Promise<IntrospectionAnswer> {
      const endpoint = options.introspectionEndpoint ?? (await discover()).introspection_endpoint;
      if (!endpoint) throw new TesseraUnavailableError('Tessera\'s discovery document has no introspection_endpoint');
      const form = new URLSearchParams({ token });
      const headers: Record<string, string> = { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' };
      if (options.clientAuthMethod === 'client_secret_basic') {
        headers.authorization = `Basic ${Buffer.from(`${formEncode(options.clientId)}:${formEncode(options.clientSecret)}`).toString('base64')}`;
      } else {
        form.set('client_id', options.clientId);
        form.set('client_secret', options.clientSecret);
      }
      const parsed = introspectionSchema.safeParse(await request(endpoint, { method: 'POST', headers, body: form.toString() }, `introspection at ${endpoint}`));
      if (!parsed.success) throw new TesseraUnavailableError(`introspection at ${endpoint}: unexpected answer (${parsed.error.issues[0]?.message})`);
      return parsed.data;
    },
  };
}

export type TesseraClient = ReturnType<typeof createTesseraClient>;
