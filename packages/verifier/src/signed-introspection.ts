import { jwtVerify, type RemoteJWKSet } from 'jose';
import { ALGORITHMS, isUnavailable } from './jwt-access-tokens.ts';
import { TesseraUnavailableError } from './tessera-client.ts';

export interface SignedAnswerOptions {
  issuer: string;
  /** This resource server's client id: the audience of the answers it is sent. */
  clientId: string;
  keySet: () => Promise<RemoteJWKSet>;
  clock: () => number;
}

/**
 * Checks a signed introspection answer (RFC 9701) and returns its `token_introspection` claim:
 * signature against the issuer's JWKS, `typ` token-introspection+jwt, `iss` the issuer, `aud`
 * this resource server, `iat` present. An answer that does not verify is not an answer: Tessera
 * counts as unavailable (the API answers 503), as it does for any unexpected answer.
 */
export function createSignedAnswerVerifier(options: SignedAnswerOptions): (jwt: string) => Promise<unknown> {
  return async (jwt) => {
    const keys = await options.keySet();
    try {
      const { payload } = await jwtVerify(jwt, keys, {
        issuer: options.issuer,
        audience: options.clientId,
        typ: 'token-introspection+jwt',
        algorithms: ALGORITHMS,
        requiredClaims: ['iat'],
        currentDate: new Date(options.clock()),
      });
      return payload.token_introspection;
    } catch (error) {
      const message = (error as Error).message;
      throw new TesseraUnavailableError(isUnavailable(error) ? `signing keys: ${message}` : `the signed introspection answer does not verify (${message})`, { cause: error });
    }
  };
}
