import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AuditEventInput, AuditLog } from '../../audit/audit-log.ts';
import type { RevokedJwt } from './jwt-access-token-revocation.ts';

// What oidc-provider does that the audit log records (docs/audit.md): a spent refresh token (or
// code) presented again, which revokes its login, and RFC 7009 revocations. Learnt from its
// documented 'grant.revoked' event and from the entities it sets on the request's context; never a
// token value (an opaque token's id is its value), only grant ids, which are references.

type Audit = Pick<AuditLog, 'recordInBackground'>;

/** The token entities oidc-provider names on a context, as far as the audit log reads them. */
interface TokenEntity {
  clientId?: string;
  accountId?: string;
  grantId?: string;
  errorDescription?: string;
}

/** What oidc-provider writes into a device code whose user pressed Cancel on the code's page. */
const DEVICE_CODE_CANCELLED = 'End-User aborted interaction';

const SPENT_CREDENTIALS = [
  ['RefreshToken', 'refresh_token'],
  ['AuthorizationCode', 'authorization_code'],
  ['DeviceCode', 'device_code'],
] as const;

const REVOCABLE = [
  ['RefreshToken', 'refresh_token'],
  ['AccessToken', 'access_token'],
  ['ClientCredentials', 'client_credentials'],
] as const;

function requestFacts(ctx: KoaContextWithOIDC): Pick<AuditEventInput, 'ip' | 'userAgent'> {
  return { ip: ctx.ip || null, userAgent: ctx.get('user-agent') || null };
}

function entity(ctx: KoaContextWithOIDC, name: string): TokenEntity | undefined {
  return (ctx.oidc?.entities as Record<string, TokenEntity | undefined> | undefined)?.[name];
}

/** Whose spent code a reuse presented, noted before oidc-provider revokes its grant (the code goes with it). */
const spentCodes = new WeakMap<object, { credential: string; token: TokenEntity }>();

const CODE_GRANTS = [
  ['authorization_code', 'code', 'AuthorizationCode', 'authorization_code'],
  ['urn:ietf:params:oauth:grant-type:device_code', 'device_code', 'DeviceCode', 'device_code'],
] as const;

/**
 * oidc-provider's revokeGrantPolicy (a documented setting), answering as its default does: the
 * revocation of an access token alone leaves its grant. It is asked before a grant is revoked; at
 * the token endpoint, that is a reuse, and for a reused code (which oidc-provider names on the
 * context only once it is accepted) it first notes whose the code was, for recordReuseDetected.
 */
export async function revokeGrantPolicy(ctx: KoaContextWithOIDC): Promise<boolean> {
  if (ctx.oidc.route === 'revocation' && ctx.oidc.entities.AccessToken) return false;
  if (ctx.oidc.route === 'token') {
    const params = (ctx.oidc.params ?? {}) as Record<string, unknown>;
    const known = CODE_GRANTS.find(([grantType]) => params.grant_type === grantType);
    const value = known && params[known[1]];
    if (known && typeof value === 'string') {
      try {
        const code = (await (ctx.oidc.provider[known[2]] as { find(value: string, options: object): Promise<TokenEntity | undefined> }).find(value, { ignoreExpiration: true })) ?? undefined;
        if (code) spentCodes.set(ctx, { credential: known[3], token: code });
      } catch {
        // The event is recorded without the owner; the revocation goes ahead.
      }
    }
  }
  return true;
}

/**
 * oidc-provider's 'grant.revoked': at the token endpoint it means a spent refresh token, code or
 * device code was presented again and its login (grant) ended (RFC 9700 §4.14.2). The revocation
 * endpoint's own grant revocations are recorded by recordRevocation.
 */
export function recordReuseDetected(audit: Audit, ctx: KoaContextWithOIDC, grantId: string): void {
  if (ctx.oidc?.route !== 'token') return;
  const spent = SPENT_CREDENTIALS.map(([name, credential]) => ({ token: entity(ctx, name), credential })).find(({ token }) => token) ?? spentCodes.get(ctx);
  const clientId = ctx.oidc.client?.clientId ?? spent?.token?.clientId ?? null;
  const userId = spent?.token?.accountId ?? null;
  audit.recordInBackground({
    actor: clientId ? `client:${clientId}` : 'system',
    action: 'oauth.reuse_detected',
    subject: userId ? `user:${userId}` : clientId ? `client:${clientId}` : null,
    ...requestFacts(ctx),
    details: { credential: spent?.credential ?? 'unknown', grantId, ...(clientId ? { clientId } : {}), ...(userId ? { userId } : {}), grantRevoked: true },
  });
}

function revocationEvent(ctx: KoaContextWithOIDC, callerId: string, kind: string, token: { clientId: string | null; userId: string | null; grantId: string | null }, grantRevoked: boolean): AuditEventInput {
  return {
    actor: `client:${callerId}`,
    action: 'oauth.token_revoked',
    subject: token.userId ? `user:${token.userId}` : token.clientId ? `client:${token.clientId}` : null,
    ...requestFacts(ctx),
    details: {
      kind,
      ...(token.clientId ? { clientId: token.clientId } : {}),
      ...(token.userId ? { userId: token.userId } : {}),
      ...(token.grantId ? { grantId: token.grantId } : {}),
      grantRevoked,
      // A resource server revoking a token another client was issued.
      ...(token.clientId && token.clientId !== callerId ? { byOtherClient: true } : {}),
    },
  };
}

/**
 * After oidc-provider answered a revocation request 200: what it revoked, if anything (it answers
 * 200 for an unknown token too, RFC 7009 §2.2). `allowed` is the endpoint's policy, asked again:
 * oidc-provider names the token on the context before asking it.
 */
export function recordRevocation(audit: Audit, ctx: KoaContextWithOIDC, allowed: (tokenClientId: unknown) => boolean): void {
  const callerId = ctx.oidc?.client?.clientId;
  if (!callerId) return;
  for (const [name, kind] of REVOCABLE) {
    const token = entity(ctx, name);
    if (!token || !allowed(token.clientId)) continue;
    // A refresh token ends its login; an access token alone does not (oidc-provider's revokeGrantPolicy).
    const facts = { clientId: token.clientId ?? null, userId: token.accountId ?? null, grantId: token.grantId ?? null };
    audit.recordInBackground(revocationEvent(ctx, callerId, kind, facts, kind === 'refresh_token' && Boolean(token.grantId)));
    return;
  }
}

/**
 * After a POST to the device page: the person at the browser pressed Cancel on the page that
 * confirms the code (before anyone signs in), and oidc-provider denied the device login.
 */
export function recordDeviceCancelled(audit: Audit, ctx: KoaContextWithOIDC): void {
  const code = entity(ctx, 'DeviceCode');
  if (code?.errorDescription !== DEVICE_CODE_CANCELLED || !code.clientId) return;
  audit.recordInBackground(
    {
      actor: `ip:${ctx.ip || 'unknown'}`,
      action: 'device.denied',
      subject: `client:${code.clientId}`,
      ...requestFacts(ctx),
      details: { clientId: code.clientId, reason: 'cancelled_at_code' },
    },
    { untrusted: true },
  );
}

/** A JWT access token revoked by Tessera (oidc-provider refuses those): under a grant, the login ends with it. */
export function recordJwtRevocation(audit: Audit, ctx: KoaContextWithOIDC, revoked: RevokedJwt): void {
  const callerId = ctx.oidc?.client?.clientId;
  if (!callerId) return;
  audit.recordInBackground(revocationEvent(ctx, callerId, 'access_token', revoked, revoked.grantId !== null));
}
