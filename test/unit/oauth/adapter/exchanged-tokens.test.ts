import { describe, expect, it } from '@jest/globals';
import { createExchangedTokens, type CredentialLink } from '../../../../src/oauth/adapter/exchanged-tokens.ts';
import { oidcDigest } from '../../../../src/oauth/adapter/oidc-keys.ts';
import { createMemoryEphemeralStore } from '../../../../src/store/ephemeral/memory-ephemeral-store.ts';
import type { EphemeralStore } from '../../../../src/store/ephemeral/ephemeral-store.ts';

// The records an exchange leaves of what its subject credential depended on (the in-process store;
// the Redis one is used by test/integration/token-exchange.test.ts).
describe('exchanged-token records', () => {
  const links: CredentialLink[] = [
    { type: 'personal_token', id: '0193a6f0-0000-7000-8000-000000000001' },
    { type: 'session', digest: 'c2Vzc2lvbi1kaWdlc3Q' },
    { type: 'oauth_token', digest: 'b2F1dGgtZGlnZXN0' },
    { type: 'grant', id: 'grant-1' },
    { type: 'jwt', jti: 'jti-1' },
    { type: 'client', id: 'batch-jobs' },
  ];

  it('keeps the links by jti until the token has expired, under a key that names no jti', async () => {
    const store = createMemoryEphemeralStore();
    const records = createExchangedTokens(store);
    await records.record('the-jti', Math.floor(Date.now() / 1000) + 300, links);
    expect(await records.links('the-jti')).toEqual(links);
    expect(await records.links('another-jti')).toBeNull();
    const ttl = await store.ttl((await findKey(store))!);
    expect(ttl).toBeGreaterThan(300_000);
    expect(ttl).toBeLessThanOrEqual(360_000);
  });

  it('refuses a record it did not write rather than read links out of it', async () => {
    const store = createMemoryEphemeralStore();
    const records = createExchangedTokens(store);
    await records.record('the-jti', Math.floor(Date.now() / 1000) + 300, []);
    await store.set((await findKey(store))!, JSON.stringify([{ type: 'grant' }]), { ttlMs: 60_000 });
    await expect(records.links('the-jti')).rejects.toThrow(/malformed/);
  });
});

/** The key the record of 'the-jti' is under, when it is there. */
async function findKey(store: EphemeralStore): Promise<string | undefined> {
  const key = `oidc:{${oidcDigest('the-jti')}}:ExchangedToken`;
  expect(key).not.toContain('the-jti');
  return (await store.get(key)) === null ? undefined : key;
}
