import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { checkProof, createProofReplayCache, normalisedHtu as verifierHtu } from '../../../packages/verifier/src/dpop.ts';
import { accessTokenHash, checkDpopProof, DpopNonceRequired, normalisedHtu } from '../../../src/introspection/dpop-proof.ts';

// The proof check of a resource server, in its two implementations: Tessera's own resource paths
// (src/introspection/dpop-proof.ts) and @tessera/verifier (packages/verifier/src/dpop.ts), which
// copies it without importing it. One table of cases, with an injected clock; each must decide
// every case the same way, with the same reason. (The Redis claim and the verifier's middleware
// are exercised end to end in test/integration/dpop.test.ts.)

const URL_ = 'https://api.example.org/records/1';
const TOKEN = 'an-access-token';
const NOW_MS = 1_000_000_000;
const IAT = NOW_MS / 1000;
const GOOD_NONCE = 'a-current-nonce';

interface Request {
  proofs: string[];
  method: string;
  url: string;
  accessToken: string;
  jkt: string;
}

/** One implementation: a check with its own replay memory; it resolves, or rejects with the reason. */
type Checker = (request: Request, options: { nowMs: number; nonceRequired: boolean }) => Promise<void>;

const IMPLEMENTATIONS: Record<string, () => Checker> = {
  'Tessera (src/introspection/dpop-proof.ts)': () => {
    const claimed = new Set<string>();
    return (request, { nowMs, nonceRequired }) =>
      checkDpopProof(request, {
        maxAgeSeconds: 60,
        clock: () => nowMs,
        claimProof: async (id) => (claimed.has(id) ? false : (claimed.add(id), true)),
        ...(nonceRequired ? { nonceValid: (nonce: unknown) => nonce === GOOD_NONCE } : {}),
      });
  },
  '@tessera/verifier (packages/verifier/src/dpop.ts)': () => {
    const replay = createProofReplayCache(1000);
    return (request, { nowMs, nonceRequired }) =>
      checkProof(request, { maxAgeSeconds: 60, replay, nowMs, nonces: nonceRequired ? { current: () => GOOD_NONCE, valid: (nonce: unknown) => nonce === GOOD_NONCE } : undefined });
  },
};

type ProofClaims = Record<string, unknown>;

interface Case {
  name: string;
  /** The proof's claims and header over a good proof's; `proofs` overrides the header's list. */
  claims?: ProofClaims;
  header?: Record<string, unknown>;
  proofs?: (proof: (claims?: ProofClaims) => Promise<string>) => Promise<string[]>;
  request?: Partial<Omit<Request, 'proofs'>>;
  nonceRequired?: boolean;
  /** 'accepted', or the reason given. */
  expected: string;
}

const CASES: Case[] = [
  { name: 'a good proof', expected: 'accepted' },
  { name: 'iat a minute either way', claims: { iat: IAT - 60 }, expected: 'accepted' },
  { name: 'iat a minute ahead', claims: { iat: IAT + 60 }, expected: 'accepted' },
  { name: 'htu written differently (case, default port, encoding, query, fragment)', claims: { htu: 'HTTPS://API.example.org:443/records/%31?x=1#y' }, expected: 'accepted' },
  { name: 'another method', claims: { htm: 'POST' }, expected: 'the DPoP proof is for another method' },
  { name: 'a lower-case method', claims: { htm: 'get' }, expected: 'the DPoP proof is for another method' },
  { name: 'another URL', claims: { htu: 'https://api.example.org/records/2' }, expected: 'the DPoP proof is for another URL' },
  { name: 'another host', claims: { htu: 'https://evil.example.org/records/1' }, expected: 'the DPoP proof is for another URL' },
  { name: 'an htu that is no URL', claims: { htu: 'records/1' }, expected: 'the DPoP proof is for another URL' },
  { name: 'no htu', claims: { htu: undefined }, expected: 'the DPoP proof is for another URL' },
  { name: 'a request URL that is not http(s)', request: { url: 'ftp://api.example.org/records/1' }, claims: { htu: 'ftp://api.example.org/records/1' }, expected: 'the DPoP proof is for another URL' },
  { name: 'another access token', request: { accessToken: 'another-token' }, expected: 'the DPoP proof is for another access token' },
  { name: 'no ath', claims: { ath: undefined }, expected: 'the DPoP proof is for another access token' },
  { name: 'a key the token is not bound to', request: { jkt: 'another-thumbprint' }, expected: 'the DPoP proof is signed by a key the token is not bound to' },
  { name: 'iat too old', claims: { iat: IAT - 61 }, expected: 'the DPoP proof is too old or from the future' },
  { name: 'iat in the future', claims: { iat: IAT + 61 }, expected: 'the DPoP proof is too old or from the future' },
  { name: 'no iat', claims: { iat: undefined }, expected: 'the DPoP proof needs an iat' },
  { name: 'no jti', claims: { jti: undefined }, expected: 'the DPoP proof needs a jti' },
  { name: 'an empty jti', claims: { jti: '' }, expected: 'the DPoP proof needs a jti' },
  { name: 'a jti longer than 256', claims: { jti: 'j'.repeat(257) }, expected: 'the DPoP proof needs a jti' },
  { name: 'typ JWT', header: { typ: 'JWT' }, expected: 'invalid DPoP proof' },
  { name: 'no proof', proofs: async () => [], expected: 'a DPoP-bound token needs a DPoP proof' },
  { name: 'two proofs', proofs: async (proof) => [await proof(), await proof()], expected: 'send exactly one DPoP proof' },
  { name: 'no JWT', proofs: async () => ['not.a.jwt'], expected: 'invalid DPoP proof' },
  { name: 'an oversized proof', proofs: async (proof) => [(await proof()) + 'A'.repeat(8192)], expected: 'invalid DPoP proof' },
  { name: 'a nonce wanted, none sent', nonceRequired: true, expected: 'the DPoP proof needs a current nonce of this server' },
  { name: 'a nonce wanted, a wrong one sent', nonceRequired: true, claims: { nonce: 'stale' }, expected: 'the DPoP proof needs a current nonce of this server' },
  { name: 'a nonce wanted and sent', nonceRequired: true, claims: { nonce: GOOD_NONCE }, expected: 'accepted' },
];

async function keyPair() {
  const keys = await generateKeyPair('ES256');
  const jwk = await exportJWK(keys.publicKey);
  return { keys, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

/** A proof for URL_ and TOKEN at IAT, with `claims` and `header` over those (undefined removes one). */
async function makeProof({ keys, jwk }: Awaited<ReturnType<typeof keyPair>>, claims: ProofClaims = {}, header: Record<string, unknown> = {}): Promise<string> {
  const payload = Object.fromEntries(Object.entries({ htm: 'GET', htu: URL_, jti: randomUUID(), ath: accessTokenHash(TOKEN), iat: IAT, ...claims }).filter(([, value]) => value !== undefined));
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk, ...header }).sign(keys.privateKey);
}

/** What a checker decided: 'accepted', or the reason it gave. */
const decision = (checking: Promise<void>) => checking.then(() => 'accepted', (error: unknown) => (error instanceof Error ? error.message : String(error)));

describe.each(Object.entries(IMPLEMENTATIONS))('the DPoP proof check of %s', (_name, implementation) => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_case, c) => {
    const key = await keyPair();
    const proofs = c.proofs ? await c.proofs((claims) => makeProof(key, claims)) : [await makeProof(key, c.claims, c.header)];
    const request = { proofs, method: 'GET', url: URL_, accessToken: TOKEN, jkt: key.jkt, ...c.request };
    expect(await decision(implementation()(request, { nowMs: NOW_MS, nonceRequired: c.nonceRequired ?? false }))).toBe(c.expected);
  });

  it('accepts a proof once, and spends nothing it refuses', async () => {
    const check = implementation();
    const key = await keyPair();
    const jti = randomUUID();
    const request = (proof: string, method = 'GET') => ({ proofs: [proof], method, url: URL_, accessToken: TOKEN, jkt: key.jkt });
    const good = await makeProof(key, { jti });
    const options = { nowMs: NOW_MS, nonceRequired: false };
    // Refused for its method, then sent right: the refusal did not spend its jti.
    expect(await decision(check(request(good, 'POST'), options))).toBe('the DPoP proof is for another method');
    expect(await decision(check(request(good), options))).toBe('accepted');
    expect(await decision(check(request(good), options))).toBe('the DPoP proof was used before');
    // The same jti from another key is another proof.
    const other = await keyPair();
    expect(await decision(check({ ...request(await makeProof(other, { jti })), jkt: other.jkt }, options))).toBe('accepted');
  });
});

describe('DPoP proof checks: the details', () => {
  it('normalises htu the same way in both implementations', () => {
    for (const htu of ['http://h.example:80/a/./b/../c', 'https://h.example/%e2%82%ac', 'HTTPS://H.EXAMPLE:8443/%7euser/', 'https://user:pw@h.example/x?q#f', 'mailto:x@y', 'not a url']) {
      expect(verifierHtu(htu)).toBe(normalisedHtu(htu));
    }
    expect(normalisedHtu('http://h.example:80/a/./b/../c')).toBe('http://h.example/a/c');
    expect(normalisedHtu('https://h.example/%e2%82%ac')).toBe('https://h.example/%E2%82%AC');
    expect(normalisedHtu('mailto:x@y')).toBeNull();
  });

  it('tells Tessera\'s callers a missing nonce apart from a bad proof', async () => {
    const key = await keyPair();
    const checking = checkDpopProof(
      { proofs: [await makeProof(key)], method: 'GET', url: URL_, accessToken: TOKEN, jkt: key.jkt },
      { maxAgeSeconds: 60, clock: () => NOW_MS, claimProof: async () => true, nonceValid: () => false },
    );
    await expect(checking).rejects.toBeInstanceOf(DpopNonceRequired);
  });
});
