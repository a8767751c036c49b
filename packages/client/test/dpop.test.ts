import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import { DpopKey } from '../src/dpop.ts';

// The client's DPoP proofs, checked by an independent implementation (jose) as a server would.
describe('@tessera/client: DPoP keys and proofs', () => {
  it('signs proofs that verify with the embedded public key, for the method, URL (no query) and token', async () => {
    const key = await DpopKey.generate();
    const proof = await key.proof('get', 'https://api.example.org/records/1?page=2#top', 'the-token');
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] });
    expect(protectedHeader.jwk).not.toHaveProperty('d');
    expect(await calculateJwkThumbprint(protectedHeader.jwk!)).toBe(key.thumbprint);
    expect(payload).toMatchObject({ htm: 'GET', htu: 'https://api.example.org/records/1', ath: createHash('sha256').update('the-token').digest('base64url') });
    expect(typeof payload.jti).toBe('string');
    expect(Math.abs((payload.iat as number) - Date.now() / 1000)).toBeLessThan(5);
    // Every proof is new.
    const again = await key.proof('GET', 'https://api.example.org/records/1', 'the-token');
    expect((await jwtVerify(again, EmbeddedJWK)).payload.jti).not.toBe(payload.jti);
  });

  it('carries the latest nonce of the origin it is for, and none to another origin', async () => {
    const key = await DpopKey.generate();
    key.rememberNonce('https://auth.example.org/oauth/token', { headers: new Headers({ 'dpop-nonce': 'n-1' }) });
    const payloadOf = async (url: string) => (await jwtVerify(await key.proof('POST', url), EmbeddedJWK)).payload;
    expect((await payloadOf('https://auth.example.org/oauth/token')).nonce).toBe('n-1');
    expect((await payloadOf('https://other.example.org/x')).nonce).toBeUndefined();
  });

  it('is saved as a private JWK and read back as the same key; a damaged one is a credentials-file error', async () => {
    const key = await DpopKey.generate();
    const saved = JSON.parse(JSON.stringify(key.toJwk())) as unknown;
    const read = await DpopKey.fromJwk(saved);
    expect(read.thumbprint).toBe(key.thumbprint);
    expect(decodeProtectedHeader(await read.proof('GET', 'https://a.example/')).jwk).toMatchObject({ kty: 'EC', crv: 'P-256' });
    for (const damaged of [null, {}, { ...key.toJwk(), crv: 'P-384' }, { ...key.toJwk(), d: 'short' }]) {
      await expect(DpopKey.fromJwk(damaged)).rejects.toMatchObject({ code: 'credentials_file' });
    }
  });
});
