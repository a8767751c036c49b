import { describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { pino } from 'pino';
import { createPublishedSigningKeys } from '../../../src/oauth/published-signing-keys.ts';
import type { PrivateJwk, SigningAlgorithm } from '../../../src/oauth/signing-keys.ts';

async function privateJwk(kid: string, alg: SigningAlgorithm): Promise<PrivateJwk> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' } as PrivateJwk;
}

/** Published keys over a store whose set the test replaces (as a rotation in the database would). */
async function published(initial: PrivateJwk[]) {
  let keys = initial;
  const signingKeys = await createPublishedSigningKeys({ store: { loadJwks: async () => ({ keys }) }, logger: pino({ level: 'silent' }) });
  return { signingKeys, rotateTo: (next: PrivateJwk[]) => (keys = next) };
}

/** Signs a JWT with the current key as Tessera's own signers do, and verifies it against the published set. */
async function signAndVerify(signingKeys: Awaited<ReturnType<typeof published>>['signingKeys']) {
  const { kid, alg, key } = await signingKeys.currentSigningKey();
  const jwt = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg, kid }).sign(key);
  const { protectedHeader } = await jwtVerify(jwt, createLocalJWKSet(signingKeys.publicJwks()));
  return protectedHeader;
}

describe('published signing keys: the current signing key', () => {
  it('is the first key of the set, imported once, and signs what the published set verifies', async () => {
    const { signingKeys } = await published([await privateJwk('new', 'ES256'), await privateJwk('old', 'RS256')]);
    expect(await signAndVerify(signingKeys)).toEqual({ alg: 'ES256', kid: 'new' });
    const [first, second] = await Promise.all([signingKeys.currentSigningKey(), signingKeys.currentSigningKey()]);
    expect(second.key).toBe(first.key);
  });

  it('follows a rotation once the keys are read again', async () => {
    const old = await privateJwk('k1', 'RS256');
    const { signingKeys, rotateTo } = await published([old]);
    const before = await signingKeys.currentSigningKey();
    rotateTo([await privateJwk('k2', 'PS256'), old]);
    expect((await signingKeys.currentSigningKey()).kid).toBe('k1');
    await signingKeys.reload();
    expect(await signAndVerify(signingKeys)).toEqual({ alg: 'PS256', kid: 'k2' });
    expect((await signingKeys.currentSigningKey()).key).not.toBe(before.key);
  });

  it('refuses to sign with a key that cannot be imported, and signs again once a good key is current', async () => {
    const broken = { ...(await privateJwk('k1', 'ES256')), d: 'not-a-key' };
    const { signingKeys, rotateTo } = await published([broken]);
    await expect(signingKeys.currentSigningKey()).rejects.toThrow();
    await expect(signingKeys.currentSigningKey()).rejects.toThrow();
    rotateTo([await privateJwk('k2', 'ES256'), broken]);
    await signingKeys.reload();
    expect(await signAndVerify(signingKeys)).toEqual({ alg: 'ES256', kid: 'k2' });
  });
});
