/** The two parts of an HTTP Basic Authorization header, exactly as sent (not yet form-decoded). */
export interface BasicCredentials {
  id: string;
  secret: string;
}

const BASIC = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i;
/** As oidc-provider parses a Basic header: one space, nothing after, canonical base64. */
const STRICT_BASIC = /^basic ([A-Za-z0-9+/]+={0,2})$/i;

/**
 * The id and secret of a Basic Authorization header (split at the first colon), or undefined.
 * `strict` accepts only what oidc-provider itself would parse, byte for byte.
 */
export function parseBasicAuthorization(header: string | undefined, options: { strict?: boolean } = {}): BasicCredentials | undefined {
  const encoded = (options.strict ? STRICT_BASIC : BASIC).exec(header ?? '')?.[1];
  if (!encoded) return undefined;
  const bytes = Buffer.from(encoded, 'base64');
  if (options.strict && bytes.toString('base64') !== encoded) return undefined;
  const decoded = bytes.toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return undefined;
  return { id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

const FORM_ENCODED = /[%+]/;

/** Whether form-decoding could change `value` (it holds a `%` or a `+`). */
export function isFormEncoded(value: string): boolean {
  return FORM_ENCODED.test(value);
}

/** RFC 6749 §2.3.1 form-decoding of one part, or undefined when it is not valid form-encoding. */
export function formDecode(value: string): string | undefined {
  if (!isFormEncoded(value)) return value;
  try {
    return decodeURIComponent(value.replace(/\+/g, '%20'));
  } catch {
    return undefined;
  }
}
