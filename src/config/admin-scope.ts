/**
 * The scope that makes an account an administrator of Tessera itself: the admin API and console.
 * Accounts hold it, login sessions carry it; it is never put in a token (the token catalog,
 * `scopes` in the configuration, may not define it) and never told to resource servers.
 */
export const ADMIN_SCOPE = 'admin';

const ADMIN_SCOPE_DESCRIPTION = 'Administer Tessera: accounts, clients, signing keys and the audit log.';

/** What an account may hold: the token catalog and the admin scope. */
export function accountScopeCatalog(tokenCatalog: Readonly<Record<string, string>>): Record<string, string> {
  return { ...tokenCatalog, [ADMIN_SCOPE]: ADMIN_SCOPE_DESCRIPTION };
}
