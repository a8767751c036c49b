import type { AuditLog } from '../audit/audit-log.ts';
import type { Client } from '../clients/client.ts';
import { AppError } from '../shared/errors.ts';
import type { AccountGrant, AccountSession, OidcAdapter } from './adapter/oidc-adapter.ts';

// "Authorized logins": the device/CLI logins and web-application grants a person approved, as
// oidc-provider's grants in the ephemeral store, each revocable by its owner. Revoking one ends
// its refresh and access tokens at once, on every node (the adapter publishes the invalidations).

/** A grant with the client it was given to, as its owner sees it. */
export interface AuthorizedLogin extends AccountGrant {
  clientName: string;
  /** Null when the client has been deleted since (its tokens went with it). */
  clientKind: Client['kind'] | null;
}

export interface AuthorizedLoginDependencies {
  /** oidc-provider's Grant adapter. */
  grants: Pick<OidcAdapter, 'listAccountGrants' | 'revokeAccountGrant'>;
  /** oidc-provider's Session adapter: the sign-ins at the app and device pages. */
  providerSessions: Pick<OidcAdapter, 'listAccountSessions' | 'revokeAccountSession'>;
  clients: { find(clientId: string): Promise<Client | null> };
  audit: AuditLog;
}

export interface Actor {
  actor: string;
  ip: string | null;
  userAgent: string | null;
}

export function createAuthorizedLogins({ grants, providerSessions, clients, audit }: AuthorizedLoginDependencies) {
  async function list(userId: string): Promise<AuthorizedLogin[]> {
    const found = await grants.listAccountGrants(userId);
    const names = new Map<string, Client | null>();
    for (const clientId of new Set(found.map((g) => g.clientId))) names.set(clientId, await clients.find(clientId));
    return found.map((grant) => {
      const client = names.get(grant.clientId) ?? null;
      return { ...grant, clientName: client?.name ?? grant.clientId, clientKind: client?.kind ?? null };
    });
  }

  return {
    list,

    /** Revokes one of the user's logins by its handle; 404 when it is not a live login of theirs. */
    async revoke(userId: string, handle: string, by: Actor): Promise<AuthorizedLogin> {
      const login = (await list(userId)).find((l) => l.handle === handle);
      if (!login || !(await grants.revokeAccountGrant(userId, handle))) throw AppError.notFound('No such login of yours: it may have ended already.');
      await audit.record({ ...by, action: 'login.revoked', subject: `user:${userId}`, details: { userId, clientId: login.clientId, scopes: login.scopes, login: handle } });
      return login;
    },

    /** The person's sign-ins at the app and device pages (they skip the password there until they end). */
    async listSignIns(userId: string): Promise<AccountSession[]> {
      return providerSessions.listAccountSessions(userId);
    },

    /** Ends one of them; 404 when it is not a live one of the user. */
    async endSignIn(userId: string, handle: string, by: Actor): Promise<void> {
      if (!(await providerSessions.revokeAccountSession(userId, handle))) throw AppError.notFound('No such sign-in of yours: it may have ended already.');
      await audit.record({ ...by, action: 'session.ended', subject: `user:${userId}`, details: { session: handle, via: 'settings', kind: 'oauth_pages' } });
    },
  };
}

export type AuthorizedLogins = ReturnType<typeof createAuthorizedLogins>;
