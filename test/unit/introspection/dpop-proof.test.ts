import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { accessTokenHash, checkDpopProof, DpopProofError, normalisedHtu } from '../../../src/introspection/dpop-proof.ts';

// The proof check of Tessera's resource paths with an injected clock and an in-memory claim (the
// Redis claim is exercised end to end in test/integration/dpop.test.ts).

const URL_ = 'https://api.example.org/records/1';
const TOKEN = 'an-access-token';

async function setup() {
  const keys = await generateKeyPair('ES256');
  const jwk = await exportJWK(keys.publicKey);
  const jkt = await calculateJwkThumbprint(jwk);
  const proof = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT({ htm: 'GET', htu: URL_, jti: randomUUID(), ath: accessTokenHash(TOKEN), iat: 1_000_000, ...claims })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk, ...header })
      .sign(keys.privateKey);
  const claimed = new Set<string>();
  let now = 1_000_000_000;
  const options = { maxAgeSeconds: 60, clock: () => now, claimProof: async (id: string) => (claimed.has(id) ? false : (claimed.add(id), true)) };
  const check = (proofs: string[], overrides: { method?: string; url?: string; jkt?: string; token?: string } = {}) =>
    checkDpopProof({ proofs, method: overrides.method ?? 'GET', url: overrides.url ?? URL_, accessToken: overrides.token ?? TOKEN, jkt: overrides.jkt ?? jkt }, options);
  return { proof, check, advance: (ms: number) => (now += ms), claimed };
}

describe('the DPoP proof check', () => {
  it('accepts a good proof once, within the window either way of the injected clock', async () => {
    const { proof, check, advance } = await setup();
    const good = await proof({});
    await expect(check([good])).resolves.toBeUndefined();
    await expect(check([good])).rejects.toThrow(/used before/);
    advance(60_000);
    await expect(check([await proof({})])).resolves.toBeUndefined();
    advance(1_000);
    await expect(check([await proof({})])).rejects.toThrow(/too old/);
    await expect(check([await proof({ iat: 1_000_000 + 122 })])).rejects.toThrow(/from the future/);
  });

  it('refuses a wrong method, URL, token, key, type, and anything but exactly one proof; spends nothing it refuses', async () => {
    const { proof, check, claimed } = await setup();
    await expect(check([await proof({ htm: 'POST' })])).rejects.toThrow(/another method/);
    await expect(check([await proof({ htu: 'https://api.example.org/records/2' })])).rejects.toThrow(/another URL/);
    await expect(check([await proof({})], { token: 'another-token' })).rejects.toThrow(/another access token/);
    await expect(check([await proof({ ath: undefined })])).rejects.toThrow(/another access token/);
    await expect(check([await proof({})], { jkt: 'another-thumbprint' })).rejects.toThrow(/not bound/);
    await expect(check([await proof({}, { typ: 'JWT' })])).rejects.toThrow(DpopProofError);
    await expect(check([])).rejects.toThrow(/needs a DPoP proof/);
    await expect(check([await proof({}), await proof({})])).rejects.toThrow(/exactly one/);
    await expect(check(['not.a.jwt'])).rejects.toThrow(/invalid DPoP proof/);
    expect(claimed.size).toBe(0);
  });

  it('compares htu normalised, without query and fragment', async () => {
    const { proof, check } = await setup();
    await expect(check([await proof({ htu: 'HTTPS://API.example.org:443/records/%31?x=1#y' })])).resolves.toBeUndefined();
    expect(normalisedHtu('http://h.example:80/a/./b/../c')).toBe('http://h.example/a/c');
    expect(normalisedHtu('https://h.example/%e2%82%ac')).toBe('https://h.example/%E2%82%AC');
    expect(normalisedHtu('mailto:x@y')).toBeNull();
  });
});
