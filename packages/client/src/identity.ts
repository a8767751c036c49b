import type { FetchFunction } from './authenticated-fetch.ts';
import { TesseraClientError } from './errors.ts';
import { jsonObject } from './http.ts';
import { arrayOf, nullable, object, optional, parse, string } from './shape.ts';

/** Who an access token belongs to, as the issuer says. */
export interface Identity {
  /** The account id (`sub`). */
  subject: string | undefined;
  username: string | undefined;
  /** The scopes the token holds. */
  scopes: string[] | undefined;
  clientId: string | undefined;
  /** `access_token`, `session`, `personal_access_token`. */
  credential: string | undefined;
}

interface MeAnswer {
  sub?: string;
  username?: string | null;
  scopes?: string[];
  credential?: string;
  client_id?: string | null;
}

const readMeAnswer = object<MeAnswer>({
  sub: optional(string()),
  username: optional(nullable(string())),
  scopes: optional(arrayOf(string())),
  credential: optional(string()),
  client_id: optional(nullable(string())),
});

/**
 * Asks the issuer who the token is (`GET /api/v1/me`, which answers every credential Tessera
 * issues). `authFetch` sends the token and renews it once on a 401.
 */
export async function fetchIdentity(authFetch: FetchFunction, issuer: string): Promise<Identity> {
  let response: Response;
  let body: unknown;
  try {
    response = await authFetch(`${issuer}/api/v1/me`, { headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    body = await jsonObject(response);
  } catch (error) {
    if (error instanceof TesseraClientError) throw error;
    throw new TesseraClientError('issuer_unreachable', `cannot reach ${new URL(issuer).origin} (${(error as Error).message})`, { cause: error });
  }
  if (response.status === 401) throw new TesseraClientError('login_required', 'the issuer does not accept the saved access token', { status: 401 });
  const answer = parse(readMeAnswer, body);
  if (response.status !== 200 || !answer.success) {
    return { subject: undefined, username: undefined, scopes: undefined, clientId: undefined, credential: undefined };
  }
  return {
    subject: answer.data.sub,
    username: answer.data.username ?? undefined,
    scopes: answer.data.scopes,
    clientId: answer.data.client_id ?? undefined,
    credential: answer.data.credential,
  };
}
