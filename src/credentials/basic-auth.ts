/** The two parts of an HTTP Basic Authorization header, exactly as sent (not yet form-decoded). */
export interface BasicCredentials {
  id: string;
  secret: string;
}

export function parseBasicAuthorization(header: string | undefined): BasicCredentials | undefined {
  const match = /^basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
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
