import { z } from 'zod';
import type { FetchFunction } from './authenticated-fetch.ts';
import { TesseraClientError } from './errors.ts';
import { jsonObject } from './http.ts';

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

const verifyAnswerSchema = z.object({
  sub: z.string(),
  username: z.string().nullish(),
  scope: z.string().optional(),
  client_id: z.string().nullish(),
  token_type: z.string().optional(),
});

const meAnswerSchema = z.object({
  username: z.string(),
  scopes: z.array(z.string()).optional(),
  credential: z.string().optional(),
});

/**
 * Asks the issuer who the token is: `GET /auth/verify` (Tessera's forward-auth endpoint, which
 * accepts OAuth access tokens and names the subject), and when that is not served (hidden behind
 * a gateway), `GET /api/v1/me`. `authFetch` sends the token and renews it once on a 401.
 */
export async function fetchIdentity(authFetch: FetchFunction, issuer: string): Promise<Identity> {
  const unknown: Identity = { subject: undefined, username: undefined, scopes: undefined, clientId: undefined, credential: undefined };
  const ask = async (path: string) => {
    try {
      const response = await authFetch(`${issuer}${path}`, { headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
      return { status: response.status, body: await jsonObject(response) };
    } catch (error) {
      if (error instanceof TesseraClientError) throw error;
      throw new TesseraClientError('issuer_unreachable', `cannot reach ${new URL(issuer).origin} (${(error as Error).message})`, { cause: error });
    }
  };
  const verified = await ask('/auth/verify');
  if (verified.status === 401) throw new TesseraClientError('login_required', 'the issuer does not accept the saved access token', { status: 401 });
  const fromVerify = verifyAnswerSchema.safeParse(verified.body);
  if (verified.status === 200 && fromVerify.success) {
    const answer = fromVerify.data;
    return {
      subject: answer.sub,
      username: answer.username ?? undefined,
      scopes: answer.scope === undefined ? undefined : answer.scope.split(' ').filter(Boolean),
      clientId: answer.client_id ?? undefined,
      credential: answer.token_type,
    };
  }
  const me = await ask('/api/v1/me');
  const fromMe = meAnswerSchema.safeParse(me.body);
  if (me.status === 200 && fromMe.success) return { ...unknown, username: fromMe.data.username, scopes: fromMe.data.scopes, credential: fromMe.data.credential };
  return unknown;
}
