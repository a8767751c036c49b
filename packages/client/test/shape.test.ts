import { describe, expect, it } from '@jest/globals';
import { arrayOf, nullable, number, object, optional, parse, recordOf, string, url } from '../src/shape.ts';
import { tokenSetOf } from '../src/token-endpoint.ts';
import { DpopKey } from '../src/dpop.ts';

// The readers that stand in for a schema library (the package has no dependencies), and the token
// answer they guard: what they refuse, and where they say the problem is.

describe('@tessera/client: checking the shape of answers', () => {
  const login = object<{ issuer: string; scope: string; expiresAt: string | null; [member: string]: unknown }>(
    { issuer: url, scope: string(), expiresAt: nullable(string()) },
    { keepUnknown: true },
  );
  const file = object<{ profiles: Record<string, ReturnType<typeof login>> }>({ profiles: recordOf(login) });

  it('keeps unknown members when told to, drops them otherwise, and leaves absent optional members absent', () => {
    expect(parse(file, { profiles: { a: { issuer: 'https://a.example', scope: 'read', expiresAt: null, addedLater: 1 } }, top: true })).toEqual({
      success: true,
      data: { profiles: { a: { issuer: 'https://a.example', scope: 'read', expiresAt: null, addedLater: 1 } } },
    });
    const metadata = object<{ issuer: string; methods?: string[] }>({ issuer: string(), methods: optional(arrayOf(string())) });
    const parsed = parse(metadata, { issuer: 'x' });
    expect(parsed).toEqual({ success: true, data: { issuer: 'x' } });
    expect(parsed.success && 'methods' in parsed.data).toBe(false);
  });

  it('names the path and the problem of the first wrong member', () => {
    const cases: [unknown, string[], RegExp][] = [
      [{ profiles: { a: { issuer: 'not a url', scope: 'read', expiresAt: null } } }, ['profiles', 'a', 'issuer'], /expected a URL/],
      [{ profiles: { a: { issuer: 'https://a.example', scope: 7, expiresAt: null } } }, ['profiles', 'a', 'scope'], /expected a string, got number/],
      [{ profiles: [] }, ['profiles'], /expected an object, got array/],
      [null, [], /expected an object, got null/],
    ];
    for (const [value, path, message] of cases) {
      const parsed = parse(file, value);
      expect(parsed.success).toBe(false);
      if (!parsed.success) {
        expect(parsed.error.path).toEqual(path);
        expect(parsed.error.message).toMatch(message);
      }
    }
    expect(parse(number({ positive: true }), 0).success).toBe(false);
    expect(parse(number({ min: 0 }), Number.NaN).success).toBe(false);
    expect(parse(arrayOf(string()), ['a', 2])).toMatchObject({ success: false, error: { path: ['1'] } });
  });

  it('takes only a usable Bearer token, or a DPoP token for a request with a proof, from the token endpoint', async () => {
    const answer = (body: Record<string, unknown>) => ({ status: 200, body });
    expect(tokenSetOf(answer({ access_token: 'at', token_type: 'bearer', expires_in: 60, scope: 'read' }), 1000, 'x')).toEqual({ accessToken: 'at', refreshToken: undefined, expiresAt: 61_000, scope: 'read', tokenType: 'Bearer' });
    const key = await DpopKey.generate();
    expect(tokenSetOf(answer({ access_token: 'at', token_type: 'DPoP' }), 0, 'read', undefined, key)).toMatchObject({ accessToken: 'at', tokenType: 'DPoP' });
    // A DPoP token to a request that sent no proof: the server is not what it claims.
    expect(() => tokenSetOf(answer({ access_token: 'at', token_type: 'DPoP' }), 0, 'read')).toThrow(/DPoP token to a request without a proof/);
    for (const body of [
      { access_token: 'at', token_type: 'mac' },
      { access_token: '', token_type: 'Bearer' },
      { access_token: 'at', token_type: 'Bearer', expires_in: -1 },
      { access_token: 'at', token_type: 'Bearer', refresh_token: '' },
      { token_type: 'Bearer' },
    ]) {
      expect(() => tokenSetOf(answer(body), 0, 'read')).toThrow(/without a usable Bearer or DPoP token/);
    }
  });
});
