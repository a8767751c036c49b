import { describe, expect, it } from '@jest/globals';
import { createTesseraVerifier } from '../src/index.ts';

/**
 * An authorization server answering introspection as RFC 7662 and RFC 9449 §6.2 allow (Tessera,
 * or another server): the verifier under test is real. Proofs themselves: test/integration/dpop.test.ts.
 */
function verifierFacing(answer: Record<string, unknown>) {
  const fetchAnswer: typeof fetch = async () => new Response(JSON.stringify(answer), { status: 200, headers: { 'content-type': 'application/json' } });
  return createTesseraVerifier({ issuer: 'https://auth.example.org', clientId: 'records-api', clientSecret: 'secret', introspectionEndpoint: 'https://auth.example.org/oauth/introspect', jwt: 'introspect', cache: false, fetch: fetchAnswer });
}

const ACTIVE = { active: true, sub: 'u1', scope: 'read', client_id: 'cli', credential_kind: 'access_token', exp: Math.floor(Date.now() / 1000) + 600 };

describe('@tessera/verifier and sender-constrained tokens', () => {
  it('accepts a bearer token, refuses a DPoP-bound one without its proof, and never accepts one bound some other way', async () => {
    expect(await verifierFacing({ ...ACTIVE, token_type: 'Bearer' }).verify('opaque-token')).toMatchObject({ active: true });
    expect(await verifierFacing({ ...ACTIVE, token_type: 'DPoP', cnf: { jkt: 'thumbprint' } }).verify('opaque-token')).toEqual({ active: false, reason: 'dpop_bound' });
    for (const bound of [{ token_type: 'DPoP' }, { token_type: 'Bearer', cnf: { 'x5t#S256': 'thumbprint' } }, { token_type: 'DPoP', cnf: { jkt: 'thumbprint', 'x5t#S256': 'thumbprint' } }]) {
      expect(await verifierFacing({ ...ACTIVE, ...bound }).verify('opaque-token')).toEqual({ active: false, reason: 'inactive' });
    }
  });

  it('reads the kind from token_type when an older Tessera answers without credential_kind', async () => {
    const { credential_kind: _kind, ...older } = ACTIVE;
    expect(await verifierFacing({ ...older, token_type: 'personal_access_token' }).verify('opaque-token')).toMatchObject({ active: true, principal: { tokenType: 'personal_access_token' } });
  });
});
