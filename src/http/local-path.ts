/**
 * Where a sign-in leads afterwards (`next`): a path on this site only, never an open redirect (no
 * scheme, no `//host`, no `/\host`, printable ASCII); anything else leads to the tokens page.
 */
export function localPath(value: unknown): string {
  return typeof value === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(value) ? value : '/settings/tokens';
}
