import { describe, expect, it } from '@jest/globals';
import { createHmac } from 'node:crypto';
import { createCsrf, sameToken } from '../../../src/http/csrf.ts';

describe('CSRF tokens', () => {
  const csrf = createCsrf('cookie-key');

  it('are the HMAC-SHA256 of <purpose>:<binding>, so the tokens in open pages stay valid', () => {
    expect(csrf.tokenFor('csrf', 'session-1')).toBe(createHmac('sha256', 'cookie-key').update('csrf:session-1').digest('base64url'));
    expect(csrf.tokenFor('interaction', 'uid-1')).toBe(createHmac('sha256', 'cookie-key').update('interaction:uid-1').digest('base64url'));
  });

  it('verify only the token of the same purpose, binding and key', () => {
    const token = csrf.tokenFor('csrf', 'session-1');
    expect(csrf.verify('csrf', 'session-1', token)).toBe(true);
    expect(csrf.verify('csrf', 'session-2', token)).toBe(false);
    expect(csrf.verify('interaction', 'session-1', token)).toBe(false);
    expect(createCsrf('another-key').verify('csrf', 'session-1', token)).toBe(false);
    for (const presented of [undefined, '', token.slice(1), `${token}x`, ['x'], 42]) expect(csrf.verify('csrf', 'session-1', presented)).toBe(false);
  });

  it('compares a double-submitted token as bytes, whatever is presented', () => {
    expect(sameToken('abc', 'abc')).toBe(true);
    expect(sameToken('abc', 'abd')).toBe(false);
    expect(sameToken('abc', 'éa')).toBe(false);
    expect(sameToken('abc', undefined)).toBe(false);
  });
});
