/** The token of an `Authorization: Bearer …` header (RFC 6750 §2.1; the scheme in any case), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}
