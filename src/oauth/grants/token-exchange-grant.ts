// RFC 8693 token exchange at /oauth/token, registered inside oidc-provider with its documented
// registerGrantType: oidc-provider authenticates the client (every method it accepts, replay checks
// included), refuses a client whose grant_types lack the exchange (a client without a policy:
// unauthorized_client), rejects repeated parameters and advertises the grant type in discovery.
// This handler applies the client's policy and issues a short-lived RFC 9068 JWT, signed with the
// keys oidc-provider signs with. Semantics and limits: docs/token-exchange.md.
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { KoaContextWithOIDC } from 'oidc-provider';
import Provider, { errors } from 'oidc-provider';
import type { UserCache } from '../../accounts/user-cache.ts';
import type { AuditLog } from '../../audit/audit-log.ts';
import { TOKEN_EXCHANGE_GRANT, type ExchangeableKind, type TokenExchangePolicy } from '../../config/token-exchange-policy.ts';
import type { TokenProfile } from '../../config/schema.ts';
import type { Awaitable } from '../../shared/awaitable.ts';
import { anyCovers } from '../../shared/path-scopes.ts';
import type { ActClaim, CredentialLink, ExchangedTokens } from '../adapter/exchanged-tokens.ts';
import type { PublishedSigningKeys } from '../published-signing-keys.ts';
import { claimTokenEndpointDpopProof, correctDisallowedGrantError, tokenEndpointDpopProof } from '../provider/internals.ts';
import { shapeForProfile } from '../provider/token-profiles.ts';

/** RFC 8693 §3: the one token type Tessera takes and issues (what each Tessera credential is at a resource server). */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const PARAMETERS = ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'audience', 'resource', 'scope', 'requested_token_type'];

/** Scopes of the protocol (OpenID, refresh): never in an exchanged token, which has no user-facing use. */
const PROTOCOL_SCOPES: ReadonlySet<string> = new Set(['openid', 'offline_access']);

/** How many earlier actors an exchanged token may name (each exchange of an exchanged token adds one). */
export const MAX_DELEGATION_DEPTH = 4;

/** A subject or actor credential, as the credential verifier answers it (introspection/credential-verifier.ts). */
export interface ExchangeCredential {
  kind: string;
  sub: string;
  username: string | null;
  scopes: string[];
  clientId: string | null;
  exp: number | null;
  links: CredentialLink[];
  act?: ActClaim;
  /** The thumbprint of the DPoP key the credential is bound to (RFC 9449), if it is bound. */
  jkt?: string;
}

export interface TokenExchangeDependencies {
  issuer: string;
  /** oauth.resources: the audiences there are, and the token profile of each (token-profiles.ts). */
  resources: Readonly<Record<string, { profile?: TokenProfile }>>;
  /** The catalog's path-scoped names: "storage.read:/atlas" covers "storage.read:/atlas/data". */
  pathScopes: ReadonlySet<string>;
  ttlSeconds: number;
  signingKeys: Pick<PublishedSigningKeys, 'currentSigningKey'>;
  /** Tessera's one credential verifier: the active credential a value is, or null. */
  verifyCredential: (value: string) => Awaitable<ExchangeCredential | null>;
  users: Pick<UserCache, 'peekUser'>;
  exchangedTokens: Pick<ExchangedTokens, 'record'>;
  audit: Pick<AuditLog, 'recordInBackground'>;
  /**
   * Personal-token guessing through the exchange, per client, as at introspection
   * (introspection/failed-lookup-limiter.ts; docs/resource-servers.md#limits-on-guessing).
   */
  failedLookups: {
    personalTokenWaitMs(source: string, token: string): number;
    personalTokenMissed(source: string, token: string): boolean;
    refusalHeaders(retryAfterMs: number): Record<string, string>;
  };
  clock?: () => number;
}

/** The client metadata the handler reads (oidc-client-metadata.ts). */
interface ExchangingClient {
  clientId: string;
  tessera_token_exchange?: TokenExchangePolicy;
}

const refuse = {
  request: (description: string) => new errors.InvalidRequest(description),
  // (oidc-provider's InvalidGrant keeps its description fixed: the reason would reach the log only.)
  grant: (description: string) => new errors.CustomOIDCProviderError('invalid_grant', description),
  target: (description: string) => new errors.InvalidTarget(description),
  scope: (description: string, scope: string) => new errors.InvalidScope(description, scope),
  client: (description: string) => new errors.UnauthorizedClient(description),
};

const KIND_NAMES: Readonly<Record<ExchangeableKind, string>> = { personal_access_token: 'personal access tokens', access_token: 'OAuth access tokens', session: 'API sessions' };

function depth(act: ActClaim | undefined): number {
  return act ? 1 + depth(act.act) : 0;
}

/** One parameter's value; oidc-provider has refused repeated ones (rejectDupes). */
function param(ctx: KoaContextWithOIDC, name: string): string | undefined {
  const value = (ctx.oidc.params as Record<string, unknown>)[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The one audience of the request: `audience` and `resource` name the same, or the policy has only one. */
function targetOf(ctx: KoaContextWithOIDC, policy: TokenExchangePolicy, resources: Readonly<Record<string, unknown>>): string {
  const audience = param(ctx, 'audience');
  const resource = param(ctx, 'resource');
  if (audience !== undefined && resource !== undefined && audience !== resource) throw refuse.target('audience and resource name different targets: an exchanged token has one audience');
  const target = audience ?? resource ?? (policy.audiences.length === 1 ? policy.audiences[0] : undefined);
  if (target === undefined) throw refuse.target('name the audience (audience or resource): this client may exchange for several');
  if (!Object.hasOwn(resources, target)) throw refuse.target(`unknown audience ${target}`);
  if (!policy.audiences.includes(target)) throw refuse.target(`this client may not exchange tokens for the audience ${target}`);
  return target;
}

/**
 * The narrowed scopes: those asked for, each covered by a scope of the subject credential, of the
 * policy and of the person (a path scope covers its sub-paths: path-scopes.ts); all the subject's
 * scopes the policy and the person cover when none is asked for.
 */
function scopesOf(ctx: KoaContextWithOIDC, subject: ExchangeCredential, policy: TokenExchangePolicy, allowed: readonly string[], pathScoped: ReadonlySet<string>): string[] {
  const covered = (held: readonly string[], scope: string) => anyCovers(held, scope, pathScoped);
  const available = subject.scopes.filter((scope) => !PROTOCOL_SCOPES.has(scope) && covered(policy.scopes, scope) && covered(allowed, scope));
  const asked = param(ctx, 'scope');
  if (asked === undefined) {
    if (available.length === 0) throw refuse.scope('none of the subject credential\'s scopes may be exchanged by this client', '');
    return available;
  }
  const requested = [...new Set(asked.split(' '))];
  for (const scope of requested) {
    if (PROTOCOL_SCOPES.has(scope) || !covered(subject.scopes, scope)) throw refuse.scope(`the subject credential does not hold the scope ${scope}: an exchange only narrows`, asked);
    if (!covered(policy.scopes, scope)) throw refuse.scope(`this client may not exchange for the scope ${scope}`, asked);
    if (!covered(allowed, scope)) throw refuse.scope(`the account may no longer be granted the scope ${scope}`, asked);
  }
  return requested;
}

/** Registers the grant type; `grant.error` events of the exchange become audit events. */
export function registerTokenExchange(provider: Provider, deps: TokenExchangeDependencies): void {
  const clock = deps.clock ?? Date.now;

  /** The active credential a value is; a client that keeps presenting unknown personal tokens is limited (429). */
  async function verified(ctx: KoaContextWithOIDC, clientId: string, value: string, name: string): Promise<ExchangeCredential> {
    const waitMs = deps.failedLookups.personalTokenWaitMs(clientId, value);
    if (waitMs > 0) {
      for (const [header, headerValue] of Object.entries(deps.failedLookups.refusalHeaders(waitMs))) ctx.set(header, headerValue);
      throw Object.assign(new errors.CustomOIDCProviderError('rate_limited', 'too many personal-token lookups found nothing; try again later'), { status: 429, statusCode: 429 });
    }
    const credential = await deps.verifyCredential(value);
    if (!credential) {
      deps.failedLookups.personalTokenMissed(clientId, value);
      throw refuse.grant(`${name} is invalid, expired or revoked`);
    }
    // A DPoP-bound token is its holder's alone (RFC 9449): the exchanging client cannot prove the key.
    if (credential.jkt !== undefined) throw refuse.grant(`${name} is bound to a DPoP key: only its holder may use it; exchange a personal access token or an unbound token`);
    return credential;
  }

  async function exchange(ctx: KoaContextWithOIDC): Promise<void> {
    const client = ctx.oidc.client as unknown as ExchangingClient;
    const policy = client.tessera_token_exchange;
    if (!policy) throw refuse.client('this client may not exchange tokens');
    const subjectToken = param(ctx, 'subject_token');
    const subjectType = param(ctx, 'subject_token_type');
    if (subjectToken === undefined || subjectType === undefined) throw refuse.request('subject_token and subject_token_type are required');
    if (subjectType !== ACCESS_TOKEN_TYPE) throw refuse.request(`unsupported subject_token_type: send ${ACCESS_TOKEN_TYPE} for any Tessera access token, personal access token or API session token`);
    const requestedType = param(ctx, 'requested_token_type');
    if (requestedType !== undefined && requestedType !== ACCESS_TOKEN_TYPE) throw refuse.request(`unsupported requested_token_type: only ${ACCESS_TOKEN_TYPE} is issued`);
    const actorToken = param(ctx, 'actor_token');
    const actorType = param(ctx, 'actor_token_type');
    if ((actorToken === undefined) !== (actorType === undefined)) throw refuse.request('actor_token and actor_token_type go together');
    if (actorType !== undefined && actorType !== ACCESS_TOKEN_TYPE) throw refuse.request(`unsupported actor_token_type: send ${ACCESS_TOKEN_TYPE}`);
    const audience = targetOf(ctx, policy, deps.resources);
    // With a DPoP proof (RFC 9449 §5), the new token is bound to its key, as every other grant's.
    const proof = await tokenEndpointDpopProof(provider, ctx);

    const subject = await verified(ctx, client.clientId, subjectToken, 'subject_token');
    if (!(policy.subjectTokenKinds as string[]).includes(subject.kind)) {
      throw refuse.client(`this client may not exchange ${KIND_NAMES[subject.kind as ExchangeableKind] ?? subject.kind}`);
    }
    if (subject.username === null) throw refuse.grant('subject_token is a client\'s own token: only a person\'s credentials are exchanged');
    if (depth(subject.act) >= MAX_DELEGATION_DEPTH) throw refuse.grant(`subject_token was already exchanged ${MAX_DELEGATION_DEPTH} times: the delegation chain is too long`);
    const user = await deps.users.peekUser(subject.sub);
    if (!user || user.disabled) throw refuse.grant('subject_token is invalid, expired or revoked');
    const scopes = scopesOf(ctx, subject, policy, user.allowedScopes, deps.pathScopes);
    const actor = actorToken === undefined ? null : await verified(ctx, client.clientId, actorToken, 'actor_token');

    const now = Math.floor(clock() / 1000);
    const lifetime = Math.min(deps.ttlSeconds, subject.exp === null ? Infinity : subject.exp - now);
    if (lifetime <= 0) throw refuse.grant('subject_token is invalid, expired or revoked');
    const act: ActClaim = { sub: actor?.sub ?? client.clientId, client_id: client.clientId, ...(subject.act ? { act: subject.act } : {}) };
    if (proof) await claimTokenEndpointDpopProof(provider, ctx, proof, client.clientId);
    const jti = randomBytes(18).toString('base64url');
    const exp = now + lifetime;
    // Recorded first: a token whose record is missing is inactive at introspection.
    await deps.exchangedTokens.record(jti, exp, subject.links);
    const { kid, alg, key } = await deps.signingKeys.currentSigningKey();
    // The claims of RFC 9068, reshaped for the audience's profile (WLCG, SciTokens) as oidc-provider's JWTs are.
    const claims = { iss: deps.issuer, sub: subject.sub, aud: audience, iat: now, exp, jti, client_id: client.clientId, scope: scopes.join(' '), act, ...(proof ? { cnf: { jkt: proof.thumbprint } } : {}) };
    const profile = deps.resources[audience]?.profile ?? 'rfc9068';
    const token = await new SignJWT(shapeForProfile(profile, claims)).setProtectedHeader({ alg, kid, typ: 'at+jwt' }).sign(key);

    deps.audit.recordInBackground({
      actor: `client:${client.clientId}`,
      action: 'token.exchanged',
      subject: `user:${subject.sub}`,
      ip: ctx.ip || null,
      userAgent: ctx.get('user-agent') || null,
      details: { clientId: client.clientId, userId: subject.sub, subjectKind: subject.kind, audience, scopes, jti, expiresIn: lifetime, ...(actor ? { actorSub: actor.sub } : {}), ...(proof ? { jkt: proof.thumbprint } : {}), ...(subject.act ? { delegationDepth: depth(subject.act) } : {}) },
    });
    // Counted with the tokens oidc-provider issues (server.ts counts '<kind>.issued').
    provider.emit('exchanged_access_token.issued', ctx);
    ctx.body = { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: proof ? 'DPoP' : 'Bearer', expires_in: lifetime, scope: scopes.join(' ') };
  }

  provider.registerGrantType(TOKEN_EXCHANGE_GRANT, exchange, PARAMETERS);

  // Every refusal of an authenticated client's exchange (a client without a policy included).
  provider.on('grant.error', (ctx: KoaContextWithOIDC, error: { error?: string; error_description?: string }) => {
    const clientId = ctx.oidc?.client?.clientId;
    if (!clientId || (ctx.oidc.params as Record<string, unknown> | undefined)?.grant_type !== TOKEN_EXCHANGE_GRANT) return;
    const answer = { error: error.error, error_description: error.error_description };
    correctDisallowedGrantError(answer);
    deps.audit.recordInBackground(
      {
        actor: `client:${clientId}`,
        action: 'token.exchange_refused',
        subject: `client:${clientId}`,
        ip: ctx.ip || null,
        userAgent: ctx.get('user-agent') || null,
        details: { clientId, error: answer.error ?? 'server_error', ...(answer.error_description ? { description: answer.error_description } : {}) },
      },
      { untrusted: true },
    );
  });
}
