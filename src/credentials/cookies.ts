/**
 * The value of cookie `name` in a Cookie header, percent-decoded, or undefined when it is absent or
 * not valid percent-encoding: a malformed cookie is no credential, and must not keep a browser
 * from signing in again.
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}
