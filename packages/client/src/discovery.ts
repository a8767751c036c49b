import { TesseraClientError } from './errors.ts';
import { isGatewayFailure, jsonObject, send, type Http } from './http.ts';
import { arrayOf, object, optional, parse, string, url } from './shape.ts';

/** The parts of the issuer's metadata the client uses. */
export interface IssuerMetadata {
  issuer: string;
  token_endpoint: string;
  device_authorization_endpoint?: string;
  revocation_endpoint?: string;
  code_challenge_methods_supported?: string[];
  /** The algorithms the issuer takes DPoP proofs in (RFC 9449 §5.1); absent: no DPoP. */
  dpop_signing_alg_values_supported?: string[];
}

const readMetadata = object<IssuerMetadata>({
  issuer: string(),
  token_endpoint: url,
  device_authorization_endpoint: optional(url),
  revocation_endpoint: optional(url),
  code_challenge_methods_supported: optional(arrayOf(string())),
  dpop_signing_alg_values_supported: optional(arrayOf(string())),
});

/** The issuer URL as it is compared and saved: no trailing slash, no query or fragment. */
export function normaliseIssuer(issuer: string): string {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new TesseraClientError('invalid_issuer', `"${issuer}" is not a URL (e.g. https://auth.example.org)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TesseraClientError('invalid_issuer', `"${issuer}" is not an http(s) URL`);
  if (url.search || url.hash) throw new TesseraClientError('invalid_issuer', `an issuer URL has no query or fragment: "${issuer}"`);
  return url.href.replace(/\/+$/, '');
}

/**
 * Reads `{issuer}/.well-known/openid-configuration`. The document must name the same issuer
 * (RFC 8414 §3.3), so tokens are never sent to endpoints another server advertises.
 */
export async function discover(client: Http, issuer: string): Promise<IssuerMetadata> {
  const base = normaliseIssuer(issuer);
  const url = `${base}/.well-known/openid-configuration`;
  const response = await send(client, url, { headers: { accept: 'application/json' } });
  if (isGatewayFailure(response.status)) {
    await response.body?.cancel();
    throw new TesseraClientError('issuer_unreachable', `${base} is not answering (HTTP ${response.status})`, { status: response.status });
  }
  const body = await jsonObject(response);
  const parsed = parse(readMetadata, body);
  if (response.status !== 200 || !parsed.success) {
    throw new TesseraClientError('invalid_issuer', `${base} is not an OAuth issuer: ${url} answered HTTP ${response.status}${response.status === 200 ? ' without the metadata' : ''}`, {
      status: response.status,
    });
  }
  if (normaliseIssuer(parsed.data.issuer) !== base) {
    throw new TesseraClientError('invalid_issuer', `${base} calls itself "${parsed.data.issuer}": use that as the issuer URL`);
  }
  return parsed.data;
}
