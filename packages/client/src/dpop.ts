import { createHash, randomUUID, webcrypto } from 'node:crypto';
import { TesseraClientError } from './errors.ts';

// DPoP (RFC 9449): a key pair the client keeps with its login, and the proofs it signs with it
// for each request, so that its tokens are bound to the key (useless to anyone who copies them
// without it). ES256 through WebCrypto; no dependency.

/** A private key as the credentials file keeps it (a JWK with `d`). */
export interface DpopPrivateJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  d: string;
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;

const base64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url');

/** The issuer offers DPoP with ES256 (the one algorithm this client signs proofs with). */
export function offersDpop(metadata: { dpop_signing_alg_values_supported?: string[] | undefined }): boolean {
  return metadata.dpop_signing_alg_values_supported?.includes('ES256') === true;
}

/** A URL as a proof's `htu` names it: no query, no fragment (RFC 9449 §4.2). */
function htu(url: string): string {
  const parsed = new URL(url);
  parsed.search = '';
  parsed.hash = '';
  return parsed.href;
}

/**
 * One DPoP key and the nonces servers gave for it (RFC 9449 §8, §9: one per origin, the latest
 * `DPoP-Nonce` each sent).
 */
export class DpopKey {
  readonly #privateKey: webcrypto.CryptoKey;
  readonly #publicJwk: { kty: string; crv: string; x: string; y: string };
  readonly #privateJwk: DpopPrivateJwk;
  readonly #nonces = new Map<string, string>();
  /** The key's JWK thumbprint (RFC 7638), which the server binds tokens to (`cnf.jkt`). */
  readonly thumbprint: string;

  private constructor(privateKey: webcrypto.CryptoKey, privateJwk: DpopPrivateJwk) {
    this.#privateKey = privateKey;
    this.#privateJwk = privateJwk;
    this.#publicJwk = { kty: 'EC', crv: 'P-256', x: privateJwk.x, y: privateJwk.y };
    // RFC 7638 §3: the required members, in lexicographic order, without whitespace.
    this.thumbprint = base64url(createHash('sha256').update(JSON.stringify({ crv: 'P-256', kty: 'EC', x: privateJwk.x, y: privateJwk.y })).digest());
  }

  /** A new key pair. */
  static async generate(): Promise<DpopKey> {
    const pair = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
    const jwk = (await webcrypto.subtle.exportKey('jwk', pair.privateKey)) as DpopPrivateJwk;
    return DpopKey.fromJwk({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, d: jwk.d });
  }

  /** The key saved with a login; a damaged one is a credentials-file error. */
  static async fromJwk(jwk: unknown): Promise<DpopKey> {
    const candidate = jwk as Partial<DpopPrivateJwk> | null;
    const parts = [candidate?.x, candidate?.y, candidate?.d];
    if (candidate?.kty !== 'EC' || candidate.crv !== 'P-256' || !parts.every((part) => typeof part === 'string' && /^[A-Za-z0-9_-]{43}$/.test(part))) {
      throw new TesseraClientError('credentials_file', 'the saved DPoP key is not a P-256 private key: log in again');
    }
    const saved = { kty: 'EC', crv: 'P-256', x: candidate.x!, y: candidate.y!, d: candidate.d! } as const;
    try {
      const privateKey = await webcrypto.subtle.importKey('jwk', { ...saved, ext: false }, ALGORITHM, false, ['sign']);
      return new DpopKey(privateKey, saved);
    } catch (error) {
      throw new TesseraClientError('credentials_file', 'the saved DPoP key cannot be read: log in again', { cause: error });
    }
  }

  /** The private key, to save with the login (only ever written where the tokens are). */
  toJwk(): DpopPrivateJwk {
    return { ...this.#privateJwk };
  }

  /** Remembers the nonce a server sent (`DPoP-Nonce`) for the next proof to its origin. */
  rememberNonce(url: string, response: { headers: Headers }): void {
    const nonce = response.headers.get('dpop-nonce');
    if (nonce) this.#nonces.set(new URL(url).origin, nonce);
  }

  /**
   * A proof for one request (RFC 9449 §4.2): its method and URL, a fresh jti and iat, the hash of
   * the access token it goes with (`ath`), and the origin's latest nonce.
   */
  async proof(method: string, url: string, accessToken?: string): Promise<string> {
    const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: this.#publicJwk };
    const nonce = this.#nonces.get(new URL(url).origin);
    const payload = {
      jti: randomUUID(),
      htm: method.toUpperCase(),
      htu: htu(url),
      iat: Math.floor(Date.now() / 1000),
      ...(accessToken ? { ath: base64url(createHash('sha256').update(accessToken, 'ascii').digest()) } : {}),
      ...(nonce ? { nonce } : {}),
    };
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
    // WebCrypto's ECDSA signature is already the JWS form (r || s).
    const signature = await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, this.#privateKey, Buffer.from(input));
    return `${input}.${base64url(new Uint8Array(signature))}`;
  }
}

/** Whether an answer asks for the proof again with a nonce (RFC 9449 §8: token endpoint; §9: resource server). */
export function asksForNonce(status: number, headers: Headers, body?: Record<string, unknown>): boolean {
  if (!headers.get('dpop-nonce')) return false;
  if (status === 400 && body?.error === 'use_dpop_nonce') return true;
  return status === 401 && /error="use_dpop_nonce"/.test(headers.get('www-authenticate') ?? '');
}
