/**
 * The algorithms DPoP proofs (RFC 9449) may be signed with, at the token endpoint and at Tessera's
 * resource paths alike (advertised as dpop_signing_alg_values_supported). Asymmetric only.
 */
export const DPOP_ALGORITHMS = ['ES256', 'EdDSA', 'Ed25519', 'PS256', 'RS256'] as const;
