// A client's token-exchange policy (RFC 8693; docs/token-exchange.md): which of a person's
// credentials it may exchange, for which audiences, and for at most which scopes.
import { z } from 'zod';
import { checkCatalogScope } from '../shared/path-scopes.ts';

/** RFC 8693's grant type. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** The kinds of subject credential a policy may admit (as the credential verifier names them). */
export const EXCHANGEABLE_KINDS = ['personal_access_token', 'access_token', 'session'] as const;
export type ExchangeableKind = (typeof EXCHANGEABLE_KINDS)[number];

/** What a client may exchange. Audiences must be `oauth.resources`, scopes in the catalog (checked where those are known). */
export const tokenExchangePolicySchema = z.strictObject({
  subjectTokenKinds: z
    .array(z.enum(EXCHANGEABLE_KINDS, { message: `must be one of ${EXCHANGEABLE_KINDS.join(', ')}` }))
    .min(1, { message: 'must name at least one kind' })
    .transform((kinds) => [...new Set(kinds)]),
  audiences: z
    .array(z.string().min(1))
    .min(1, { message: 'must name at least one audience' })
    .max(20)
    .transform((audiences) => [...new Set(audiences)]),
  scopes: z
    .array(z.string().min(1))
    .min(1, { message: 'must name at least one scope' })
    .max(100)
    .transform((scopes) => [...new Set(scopes)]),
});
export type TokenExchangePolicy = z.infer<typeof tokenExchangePolicySchema>;

/** Client kinds that may hold a policy: confidential ones (a device client cannot authenticate). */
export const EXCHANGING_KINDS: ReadonlySet<string> = new Set(['service', 'web', 'resource_server']);

/** Why each listed audience is not one of `oauth.resources`, by its index (empty when all are). */
export function audienceProblems(audiences: readonly string[], resources: Record<string, unknown>): { index: number; message: string }[] {
  return audiences.flatMap((audience, index) => (Object.hasOwn(resources, audience) ? [] : [{ index, message: `"${audience}" is not one of oauth.resources (known: ${Object.keys(resources).join(', ')})` }]));
}

/** Why each listed scope is not in the catalog, by its index: a path scope ("storage.read:/atlas") where its name is path-scoped. */
export function scopeProblems(scopes: readonly string[], catalog: Readonly<Record<string, unknown>>, pathScoped: ReadonlySet<string> = new Set()): { index: number; message: string }[] {
  return scopes.flatMap((scope, index) => {
    const checked = checkCatalogScope(scope, catalog, pathScoped);
    return checked.ok ? [] : [{ index, message: scope.includes(':/') ? checked.problem : `"${scope}" is not in the scope catalog` }];
  });
}

/** Why a policy does not fit the scope catalog and resources, per field (empty when it fits). */
export function tokenExchangePolicyProblems(
  policy: TokenExchangePolicy,
  catalog: Readonly<Record<string, unknown>>,
  resources: Record<string, unknown>,
  pathScoped: ReadonlySet<string> = new Set(),
): { path: (string | number)[]; message: string }[] {
  return [
    ...audienceProblems(policy.audiences, resources).map(({ index, message }) => ({ path: ['audiences', index], message })),
    ...scopeProblems(policy.scopes, catalog, pathScoped).map(({ index, message }) => ({ path: ['scopes', index], message })),
  ];
}
