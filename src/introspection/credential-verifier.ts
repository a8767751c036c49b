import { JWT_GRANT_CLAIM } from '../oauth/provider/provider.ts';
import { jwtVerify, type JWTVerifyGetKey } from 'jose';
import { ADMIN_SCOPE } from '../config/admin-scope.ts';
import type { UserCache } from '../accounts/user-cache.ts';
import type { Config } from '../config/schema.ts';
import type { OidcClientMetadata } from '../clients/client-service.ts';
import type { OidcAdapter } from '../oauth/adapter/oidc-adapter.ts';
import type { AdapterPayload } from 'oidc-provider';
import type { ApiSessionStore } from '../sessions/api-session-store.ts';
import type { PersonalTokenService } from '../personal-tokens/personal-token-service.ts';
import { oidcDigest } from '../oauth/adapter/oidc-keys.ts';
import { tokenFormat } from '../credentials/token-format.ts';
import { invalidationTarget as target } from '../cache/invalidations.ts';
import type { Awaitable } from '../shared/awaitable.ts';
import { anyCovers } from '../shared/path-scopes.ts';
import type { ActClaim, CredentialLink } from '../oauth/adapter/exchanged-tokens.ts';

/** What an active credential grants, whatever its kind. */
export interface ActiveCredential {
  kind: 'access_token' | 'refresh_token' | 'personal_access_token' | 'session';
  /** The user, or the client for a client-credentials token. */
  sub: string;
  username: string | null;
  /**
   * The owner's e-mail, personal access tokens only: the API-key pair may name the owner by it,
   * and a resource server checking the pair needs it (@tessera/verifier).
   */
  email?: string;
  scopes: string[];
  clientId: string | null;
  aud: string | null;
  iat: number | null;
  exp: number | null;
  /** The grant (a person's login) an OAuth token was issued under, if any: what it was granted besides the token's own scopes. */
  grantId?: string;
  /**
   * The JWK thumbprint (RFC 7638) of the key a DPoP-bound token is bound to (RFC 9449 §6: its
   * `cnf.jkt`). Such a token is good only with a proof signed by that key: never as a bearer token.
   */
  jkt?: string;
  /**
   * What ends it (see invalidations.ts): its own token, its grant, its client, its user. A cached
   * answer is dropped when any of these is invalidated. Never part of an answer to a caller.
   */
  invalidatedBy: string[];
  /**
   * What must remain for it to stay active (its own token, session, grant, client…), checkable
   * without it: a token exchanged for it records these (oauth/adapter/exchanged-tokens.ts). Never
   * part of an answer to a caller.
   */
  links: CredentialLink[];
  /** An exchanged token's actors (RFC 8693 §4.1). */
  act?: ActClaim;
}

export interface VerifyOptions {
  /** Whether a refresh token counts (introspection yes, gateways and APIs no). */
  refreshTokens?: boolean;
  /** The caller's address, for the personal-token audit trail. */
  ip?: string | null;
  /**
   * Whether the caller checks DPoP proofs: DPoP-bound tokens are then answered with their `jkt`;
   * otherwise a bound token is inactive (never usable as a bearer token).
   */
  senderConstrained?: boolean;
}

export interface CredentialVerifierDependencies {
  config: Config;
  accounts: Pick<UserCache, 'peekUser'>;
  clients: { findOidcMetadata(clientId: string): Awaitable<Readonly<OidcClientMetadata> | undefined> };
  sessions: ApiSessionStore;
  personalTokens: PersonalTokenService;
  /** oidc-provider's stored artefacts, by model. */
  oidcModel: (modelName: string) => OidcAdapter;
  /** The first of these models holding a token with this value (one round trip; oidc-adapter.ts). */
  findOidcToken: (value: string, models: readonly string[]) => Promise<{ model: string; payload: AdapterPayload } | undefined>;
  /** The published signing key a JWT access token's header names (oauth/published-signing-keys.ts). */
  verificationKey: JWTVerifyGetKey;
  /** Whether a JWT access token without a grant was revoked, by its jti (jwt-revocations.ts). */
  jwtRevoked: (jti: string) => Promise<boolean>;
  /** What an exchanged token's subject credential depended on, by the token's jti (exchanged-tokens.ts). */
  exchangedTokenLinks: (jti: string) => Promise<CredentialLink[] | null>;
  /** An opaque OAuth token's payload by the digest of its value, when the store still has it. */
  findOidcTokenByDigest: (digest: string, models: readonly string[]) => Promise<{ model: string; payload: AdapterPayload } | undefined>;
  clock?: () => number;
}


/** An `act` claim as Tessera issues one: a subject, perhaps a client, perhaps earlier actors, at most a few deep. */
function isActClaim(value: unknown, depth = 0): value is ActClaim {
  if (typeof value !== 'object' || value === null || depth > 8) return false;
  const claim = value as Record<string, unknown>;
  return typeof claim.sub === 'string' && (claim.client_id === undefined || typeof claim.client_id === 'string') && (claim.act === undefined || isActClaim(claim.act, depth + 1));
}
/** A DPoP-bound token is inactive to a caller that does not check proofs (VerifyOptions.senderConstrained). */
export const withoutBoundTokens = (active: ActiveCredential | null, options: VerifyOptions) => (active?.jkt !== undefined && !options.senderConstrained ? null : active);

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * One answer to "is this credential active, and what does it grant?" for every kind Tessera
 * issues: API session tokens and personal access tokens (by their prefix), JWT access tokens
 * (verified against Tessera's own keys), and opaque OAuth tokens (looked up in the store).
 * Anything else — unknown, malformed, expired, revoked, a disabled user's — is null.
 */
export function createCredentialVerifier(deps: CredentialVerifierDependencies): CredentialVerifier {
  const { config, accounts, clients } = deps;
  const pathScoped = new Set(config.pathScopes);
  /** Whether the user still holds the scope, or a path scope covering it (a narrowed grant). */
  const stillHeld = (allowed: readonly string[], scope: string) => allowed.includes(scope) || (pathScoped.size > 0 && anyCovers(allowed, scope, pathScoped));
  const clock = deps.clock ?? Date.now;

  async function activeUser(id: string) {
    const user = await accounts.peekUser(id);
    return user && !user.disabled ? user : null;
  }

  async function verifyOAuth(value: string, options: { refreshTokens: boolean }): Promise<ActiveCredential | null> {
    const now = Math.floor(clock() / 1000);
    const models = options.refreshTokens ? ['AccessToken', 'ClientCredentials', 'RefreshToken'] : ['AccessToken', 'ClientCredentials'];
    const found = await deps.findOidcToken(value, models);
    if (!found) return null;
    const { model, payload } = found;
    if (typeof payload.exp === 'number' && payload.exp <= now) return null;
    if (payload.consumed) return null;
    // Certificate-bound tokens (RFC 8705) are not issued, and would pass nowhere; a DPoP-bound one
    // is answered with its key's thumbprint (the caller checks its proof: senderConstrained).
    if (payload['x5t#S256'] !== undefined || (payload.jkt !== undefined && typeof payload.jkt !== 'string')) return null;
    const bound = typeof payload.jkt === 'string' ? { jkt: payload.jkt } : {};
    const clientId = typeof payload.clientId === 'string' ? payload.clientId : null;
    if (!clientId || !(await clients.findOidcMetadata(clientId))) return null;
    const scopes = String(payload.scope ?? '').split(' ').filter(Boolean);
    const aud = typeof payload.aud === 'string' ? payload.aud : null;
    const digest = oidcDigest(value);
    const invalidatedBy = [target.oauthToken(digest), target.client(clientId)];
    const links: CredentialLink[] = [{ type: 'oauth_token', digest }, { type: 'client', id: clientId }];
    if (typeof payload.grantId === 'string') {
      // Inactive once its grant is gone, as a JWT is: a token issued while its grant was being
      // revoked can miss the revocation's sweep of the grant's index, never this check.
      if (!(await deps.oidcModel('Grant').find(payload.grantId))) return null;
      invalidatedBy.push(target.grant(payload.grantId));
      links.push({ type: 'grant', id: payload.grantId });
    }
    const common = { clientId, aud, iat: typeof payload.iat === 'number' ? payload.iat : null, exp: typeof payload.exp === 'number' ? payload.exp : null };
    if (model === 'ClientCredentials') return { kind: 'access_token', sub: clientId, username: null, scopes, ...common, ...bound, invalidatedBy, links };
    const user = typeof payload.accountId === 'string' ? await activeUser(payload.accountId) : null;
    if (!user) return null;
    invalidatedBy.push(target.user(user.id));
    return {
      kind: model === 'RefreshToken' ? 'refresh_token' : 'access_token',
      sub: user.id,
      username: user.username,
      scopes: scopes.filter((s) => stillHeld(user.allowedScopes, s) || s === 'openid' || s === 'offline_access'),
      ...common,
      ...(typeof payload.grantId === 'string' ? { grantId: payload.grantId } : {}),
      ...bound,
      invalidatedBy,
      links,
    };
  }

  /** Whether a link an exchanged token recorded still holds (exchanged-tokens.ts). */
  async function linkHolds(link: CredentialLink, now: number): Promise<boolean> {
    switch (link.type) {
      case 'personal_token':
        return deps.personalTokens.isActive(link.id);
      case 'session':
        return (await deps.sessions.peekByDigest(link.digest)) !== null;
      case 'oauth_token': {
        const found = await deps.findOidcTokenByDigest(link.digest, ['AccessToken', 'ClientCredentials']);
        return found !== undefined && !found.payload.consumed && !(typeof found.payload.exp === 'number' && found.payload.exp <= now);
      }
      case 'grant':
        return (await deps.oidcModel('Grant').find(link.id)) !== undefined;
      case 'jwt':
        return !(await deps.jwtRevoked(link.jti));
      case 'client':
        return (await clients.findOidcMetadata(link.id)) !== undefined;
    }
  }

  /** The invalidation a link's end publishes. */
  function linkTarget(link: CredentialLink): string {
    switch (link.type) {
      case 'personal_token':
        return target.personalToken(link.id);
      case 'session':
        return target.session(link.digest);
      case 'oauth_token':
        return target.oauthToken(link.digest);
      case 'grant':
        return target.grant(link.id);
      case 'jwt':
        return target.jwtAccessToken(link.jti);
      case 'client':
        return target.client(link.id);
    }
  }

  /**
   * An exchanged token (docs/token-exchange.md): its own revocation record, then every link its
   * subject credential had, each of which ends it. Null when any is gone, or its record is.
   */
  async function exchangedLinks(jti: string, clientId: string): Promise<CredentialLink[] | null> {
    if (await deps.jwtRevoked(jti)) return null;
    const recorded = await deps.exchangedTokenLinks(jti);
    if (!recorded) return null;
    const now = Math.floor(clock() / 1000);
    const holds = await Promise.all(recorded.map((link) => linkHolds(link, now)));
    if (holds.includes(false)) return null;
    return [...recorded, { type: 'jwt', jti }, { type: 'client', id: clientId }];
  }

  async function verifyJwt(value: string): Promise<ActiveCredential | null> {
    try {
      const { payload } = await jwtVerify(value, deps.verificationKey, { issuer: config.issuer, typ: 'at+jwt', currentDate: new Date(clock()) });
      // DPoP-bound (cnf.jkt) is answered with the thumbprint; any other confirmation passes nowhere.
      const cnf = payload.cnf as Record<string, unknown> | undefined;
      if (cnf !== undefined && (typeof cnf !== 'object' || cnf === null || Object.keys(cnf).length !== 1 || typeof cnf.jkt !== 'string')) return null;
      const bound = cnf ? { jkt: cnf.jkt as string } : {};
      const clientId = typeof payload.client_id === 'string' ? payload.client_id : null;
      if (!clientId || !(await clients.findOidcMetadata(clientId))) return null;
      const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
      const aud = Array.isArray(payload.aud) ? (payload.aud[0] ?? null) : (payload.aud ?? null);
      const common = { clientId, aud, iat: payload.iat ?? null, exp: payload.exp ?? null };
      const invalidatedBy = [target.client(clientId)];
      let links: CredentialLink[] = [{ type: 'client', id: clientId }];
      // A JWT issued under a grant (device or browser login) lives only as long as its grant:
      // revoking the refresh token, or the grant, ends it here even though the JWT still verifies.
      const grantId = payload[JWT_GRANT_CLAIM];
      const act = isActClaim(payload.act) ? payload.act : undefined;
      // An actor claim Tessera did not write (malformed, or beside a grant or without a jti) was never issued here.
      if (payload.act !== undefined && (!act || typeof grantId === 'string' || typeof payload.jti !== 'string')) return null;
      if (typeof grantId === 'string') {
        if (!(await deps.oidcModel('Grant').find(grantId))) return null;
        invalidatedBy.push(target.grant(grantId));
        links.push({ type: 'grant', id: grantId });
      } else if (typeof payload.jti === 'string' && act) {
        // Exchanged (RFC 8693): it ends with the credential it was exchanged for, and with itself.
        const exchanged = await exchangedLinks(payload.jti, clientId);
        if (!exchanged) return null;
        links = exchanged;
        invalidatedBy.push(...exchanged.map(linkTarget));
      } else if (typeof payload.jti === 'string') {
        // Without a grant (client credentials), a revocation leaves a record by jti. Read only here,
        // when the token is verified afresh: a cached answer is dropped by the revocation's invalidation.
        if (await deps.jwtRevoked(payload.jti)) return null;
        invalidatedBy.push(target.jwtAccessToken(payload.jti));
        links.push({ type: 'jwt', jti: payload.jti });
      }
      if (payload.sub === clientId && !act) return { kind: 'access_token', sub: clientId, username: null, scopes, ...common, ...bound, invalidatedBy, links };
      const user = payload.sub ? await activeUser(payload.sub) : null;
      if (!user) return null;
      invalidatedBy.push(target.user(user.id));
      return {
        kind: 'access_token',
        sub: user.id,
        username: user.username,
        scopes: act ? scopes.filter((s) => stillHeld(user.allowedScopes, s)) : scopes,
        ...common,
        ...(typeof grantId === 'string' ? { grantId } : {}),
        ...bound,
        invalidatedBy: [...new Set(invalidatedBy)],
        links,
        ...(act ? { act } : {}),
      };
    } catch {
      return null;
    }
  }

  return {
    async verify(value: string, options: VerifyOptions = {}): Promise<ActiveCredential | null> {
      if (!value || value.length > 4096) return null;
      const kind = tokenFormat.parse(value);
      if (kind === 'session') {
        // A use at a resource server is a use: the session slides as it does on Tessera's own API.
        // (With the cache in front, that happens once per cache lifetime, which is far shorter
        // than the idle timeout.)
        const session = await deps.sessions.authenticate(value);
        const user = session && (await activeUser(session.userId));
        if (!session || !user) return null;
        const iat = Math.floor(session.createdAt.getTime() / 1000);
        return {
          kind: 'session',
          sub: user.id,
          username: user.username,
          // The admin scope is Tessera's own: a resource server is never told of it.
          scopes: session.scopes.filter((s) => s !== ADMIN_SCOPE && stillHeld(user.allowedScopes, s)),
          clientId: null,
          aud: null,
          iat,
          exp: Math.floor(session.expiresAt.getTime() / 1000),
          invalidatedBy: [target.session(tokenFormat.digest(value)), target.user(user.id)],
          links: [{ type: 'session', digest: tokenFormat.digest(value) }],
        };
      }
      if (kind === 'personal_access_token') {
        const token = await deps.personalTokens.verify(value, { ip: options.ip ?? null });
        const user = token && (await activeUser(token.userId));
        if (!token || !user) return null;
        return {
          kind: 'personal_access_token',
          sub: user.id,
          username: user.username,
          ...(user.email ? { email: user.email } : {}),
          scopes: token.scopes,
          clientId: null,
          aud: null,
          iat: Math.floor(token.createdAt.getTime() / 1000),
          exp: token.expiresAt ? Math.floor(token.expiresAt.getTime() / 1000) : null,
          invalidatedBy: [target.personalToken(token.tokenId), target.user(user.id)],
          links: [{ type: 'personal_token', id: token.tokenId }],
        };
      }
      if (value.startsWith('tsr_')) return null; // a Tessera prefix with a bad checksum: mistyped
      const active = JWT_SHAPE.test(value) ? await verifyJwt(value) : await verifyOAuth(value, { refreshTokens: options.refreshTokens ?? false });
      return withoutBoundTokens(active, options);
    },
  };
}

export interface CredentialVerifier {
  /** The credential's answer, or null when it is not active; at once when memory holds it (credential-cache.ts). */
  verify(value: string, options?: VerifyOptions): Awaitable<ActiveCredential | null>;
}
