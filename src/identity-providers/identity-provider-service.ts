import type { AccountService } from '../accounts/account-service.ts';
import type { User } from '../accounts/user.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { IdentityProvider } from '../config/identity-providers.ts';
import type { Config } from '../config/schema.ts';
import { AppError } from '../shared/errors.ts';
import { randomNonce, randomPKCECodeVerifier } from 'openid-client';
import { scopesFromClaims, usernameCandidates, verifiedEmail } from './claim-mapping.ts';
import type { FlowOrigin, FlowStore } from './flow-store.ts';
import type { IdentityRepository, LinkedIdentity } from './identity-repository.ts';
import { createUpstreamClient, ProviderRefusalError, ProviderUnavailableError, type UpstreamClient } from './upstream-client.ts';

// Sign-in through upstream identity providers (docs/sign-in-providers.md): the start, the
// callback's outcome (an existing link, a new account, a new link), and the links a person or an
// administrator sees and removes. Matching by e-mail never happens: an identity reaches an
// account only through a link made at its creation or by the signed-in owner.

/** Why an upstream sign-in ended without one; each has its page (identity-provider-pages.ts). */
export type UpstreamFailure =
  | 'unknown_provider'
  /** Too many sign-ins started from the address (flow-store.ts, STARTS_PER_IP_PER_MINUTE). */
  | 'limited'
  /** The state is unknown: used already (a replayed callback), expired, or never issued. */
  | 'expired'
  /** The callback came to another browser than the one that started the sign-in. */
  | 'other_browser'
  /** The provider answered with an error (`access_denied` when the person declined). */
  | 'refused'
  /** The answer failed a check: a wrong `iss`, a bad ID token, a code the provider did not accept. */
  | 'rejected'
  | 'unavailable'
  /** The identity's account is disabled. */
  | 'disabled'
  /** No account is linked and the provider may not create accounts. */
  | 'not_linked'
  /** Linking: the identity belongs to another account already. */
  | 'linked_elsewhere'
  /** Linking: the session that started it is over, or another account signed in meanwhile. */
  | 'link_session_lost';

export class UpstreamSignInError extends Error {
  readonly reason: UpstreamFailure;
  readonly provider: IdentityProvider | null;
  readonly detail: string | undefined;

  constructor(reason: UpstreamFailure, provider: IdentityProvider | null, detail?: string) {
    super(`upstream sign-in failed: ${reason}${detail ? ` (${detail})` : ''}`);
    this.reason = reason;
    this.provider = provider;
    this.detail = detail;
  }
}

/** Where the request came from, for the audit log. */
export interface RequestFacts {
  ip: string;
  userAgent: string | null;
}

export type UpstreamOutcome =
  | { kind: 'signed_in'; user: User; created: boolean; provider: IdentityProvider; origin: Exclude<FlowOrigin, { kind: 'link' }> }
  | { kind: 'linked'; user: User; provider: IdentityProvider; already: boolean };

export interface IdentityProviderServiceOptions {
  config: Config;
  accounts: AccountService;
  identities: IdentityRepository;
  flows: FlowStore;
  audit: AuditLog;
}

export function createIdentityProviderService({ config, accounts, identities, flows, audit }: IdentityProviderServiceOptions) {
  const clients = new Map<string, UpstreamClient>(config.identityProviders.map((provider) => [provider.id, createUpstreamClient(provider, config.issuer)]));
  const clientOf = (id: string) => {
    const client = clients.get(id);
    if (!client) throw new UpstreamSignInError('unknown_provider', null);
    return client;
  };

  function failed(reason: UpstreamFailure, provider: IdentityProvider | null, facts: RequestFacts, details: Record<string, unknown> = {}) {
    audit.recordInBackground(
      { actor: `ip:${facts.ip}`, action: 'sign_in.provider_failed', subject: null, ip: facts.ip, userAgent: facts.userAgent, details: { via: 'provider', provider: provider?.id ?? null, reason, ...details } },
      { untrusted: true },
    );
    return new UpstreamSignInError(reason, provider, typeof details.error === 'string' ? details.error : undefined);
  }

  /** An identity's account: the linked one, or (first sign-in) a new one without a password. */
  async function accountFor(provider: IdentityProvider, subject: string, claims: Record<string, unknown>, facts: RequestFacts): Promise<{ user: User; created: boolean }> {
    const email = verifiedEmail(provider, claims);
    const mapped = scopesFromClaims(provider, claims, config.scopes);
    const linked = await identities.find(provider.id, subject);
    if (linked) {
      let user = await accounts.findUserById(linked.userId);
      if (!user) throw failed('not_linked', provider, facts);
      if (user.disabled) throw failed('disabled', provider, facts, { userId: user.id });
      await identities.touch(provider.id, subject, email);
      // Rules add what the claims grant now; they never take away what an administrator gave.
      const added = mapped.filter((scope) => !user!.allowedScopes.includes(scope));
      if (added.length) user = await accounts.setAllowedScopes(user.username, [...user.allowedScopes, ...added], { actor: `provider:${provider.id}`, ip: facts.ip, userAgent: facts.userAgent });
      return { user, created: false };
    }
    if (!provider.createAccounts) throw failed('not_linked', provider, facts);
    const scopes = [...new Set([...(provider.defaultScopes ?? config.accounts.defaultScopes), ...mapped])];
    const { user } = await accounts.createPasswordlessUser(
      { usernames: usernameCandidates(provider, claims, subject), email, scopes },
      { actor: `provider:${provider.id}`, ip: facts.ip, userAgent: facts.userAgent, details: { provider: provider.id } },
    );
    if (!(await identities.link({ provider: provider.id, subject, userId: user.id, email }))) {
      // A second callback for the same new identity raced this one and linked first: use its account.
      await accounts.deleteUser(user.username, { actor: `provider:${provider.id}` });
      return accountFor(provider, subject, claims, facts);
    }
    audit.recordInBackground({ actor: `user:${user.id}`, action: 'identity.linked', subject: `user:${user.id}`, ip: facts.ip, userAgent: facts.userAgent, details: { provider: provider.id, subject, created: true } });
    return { user, created: true };
  }

  return {
    /** The configured providers, in configuration order (the buttons). */
    providers: (): IdentityProvider[] => config.identityProviders,
    client: clientOf,

    /** Starts a sign-in: the flow saved under a fresh state, and the provider's URL to send the browser to. */
    async begin(providerId: string, origin: FlowOrigin, browserBinding: string, facts: RequestFacts): Promise<URL> {
      const client = clientOf(providerId);
      if (!(await flows.allowStart(facts.ip))) throw failed('limited', client.provider, facts);
      const codeVerifier = randomPKCECodeVerifier();
      const nonce = randomNonce();
      try {
        // Discovery first: a provider that is down leaves no flow behind.
        await client.configured();
      } catch (error) {
        if (error instanceof ProviderUnavailableError) throw failed('unavailable', client.provider, facts, { at: 'discovery' });
        throw error;
      }
      const state = await flows.begin({ provider: providerId, codeVerifier, nonce, origin }, browserBinding);
      return client.authorizationUrl(state, nonce, codeVerifier);
    },

    /**
     * The callback: takes the flow (once), checks the answer, and resolves the account. Linking
     * needs `signedInUserId`, the browser's current account, to be the one that started it.
     */
    async complete(providerId: string, callbackUrl: URL, browserBinding: string | undefined, facts: RequestFacts, signedInUserId: () => Promise<string | null>): Promise<UpstreamOutcome> {
      const client = clientOf(providerId);
      const provider = client.provider;
      const state = callbackUrl.searchParams.get('state') ?? '';
      const flow = await flows.take(state, browserBinding);
      if (flow === 'unknown') throw failed('expired', provider, facts);
      if (flow === 'other_browser') throw failed('other_browser', provider, facts);
      if (flow.provider !== providerId) throw failed('rejected', provider, facts, { error: 'callback of another provider' });
      let identity;
      try {
        identity = await client.finish(callbackUrl, { state, nonce: flow.nonce, codeVerifier: flow.codeVerifier });
      } catch (error) {
        if (error instanceof ProviderRefusalError) throw failed('refused', provider, facts, { error: error.error.slice(0, 64) });
        if (error instanceof ProviderUnavailableError) throw failed('unavailable', provider, facts, { at: 'callback' });
        throw failed('rejected', provider, facts, { error: (error as Error).message.slice(0, 200) });
      }
      const { subject, claims } = identity;
      if (subject.length < 1 || subject.length > 255) throw failed('rejected', provider, facts, { error: 'subject length' });

      if (flow.origin.kind === 'link') {
        if ((await signedInUserId()) !== flow.origin.userId) throw failed('link_session_lost', provider, facts);
        const user = await accounts.findUserById(flow.origin.userId);
        if (!user || user.disabled) throw failed('link_session_lost', provider, facts);
        const existing = await identities.find(provider.id, subject);
        if (existing) {
          if (existing.userId !== user.id) throw failed('linked_elsewhere', provider, facts, { userId: user.id });
          return { kind: 'linked', user, provider, already: true };
        }
        if (!(await identities.link({ provider: provider.id, subject, userId: user.id, email: verifiedEmail(provider, claims) }))) throw failed('linked_elsewhere', provider, facts, { userId: user.id });
        await audit.record({ actor: `user:${user.id}`, action: 'identity.linked', subject: `user:${user.id}`, ip: facts.ip, userAgent: facts.userAgent, details: { provider: provider.id, subject } });
        return { kind: 'linked', user, provider, already: false };
      }

      const { user, created } = await accountFor(provider, subject, claims, facts);
      audit.recordInBackground({ actor: `user:${user.id}`, action: 'sign_in.succeeded', subject: `user:${user.id}`, ip: facts.ip, userAgent: facts.userAgent, details: { via: 'provider', provider: provider.id, ...(created ? { created: true } : {}) } });
      return { kind: 'signed_in', user, created, provider, origin: flow.origin };
    },

    async listLinks(userId: string): Promise<(LinkedIdentity & { providerName: string })[]> {
      const names = new Map(config.identityProviders.map((p) => [p.id, p.name]));
      return (await identities.listForUser(userId)).map((link) => ({ ...link, providerName: names.get(link.provider) ?? link.provider }));
    },

    /**
     * Removes a link. The owner may not remove the last way to sign in (an account without a
     * password and no other link); an administrator may (the account can be given a password).
     */
    async unlink(user: User, providerId: string, subject: string, by: { actor: string; ip?: string | null; userAgent?: string | null }): Promise<void> {
      const links = await identities.listForUser(user.id);
      if (!links.some((link) => link.provider === providerId && link.subject === subject)) throw AppError.notFound('No such linked sign-in.');
      const byOwner = by.actor === `user:${user.id}`;
      if (byOwner && links.length === 1 && !(await accounts.hasPassword(user.id))) {
        throw AppError.conflict('This is the only way to sign in to your account: link another provider first.');
      }
      await identities.unlink(user.id, providerId, subject);
      await audit.record({ ...by, action: 'identity.unlinked', subject: `user:${user.id}`, details: { provider: providerId, subject, username: user.username } });
    },
  };
}

export type IdentityProviderService = ReturnType<typeof createIdentityProviderService>;
