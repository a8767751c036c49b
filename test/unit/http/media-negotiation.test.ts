import { describe, expect, it } from '@jest/globals';
import { acceptWeight } from '../../../src/http/media-negotiation.ts';
import { wantsSignedAnswer } from '../../../src/routes/oauth/introspection-endpoint.ts';

const JWT = 'application/token-introspection+jwt';

describe('acceptWeight (RFC 9110 §12.5.1)', () => {
  it('takes the weight of the most specific range that matches, whatever the order', () => {
    expect(acceptWeight('application/json', 'application/json')).toBe(1);
    expect(acceptWeight('*/*;q=0.2, application/*;q=0.5, application/json;q=0.7', 'application/json')).toBe(0.7);
    expect(acceptWeight('application/json;q=0.7, application/*;q=0.5, */*;q=0.2', 'application/json')).toBe(0.7);
    expect(acceptWeight('application/*;q=0.5, */*;q=0.2', JWT)).toBe(0.5);
    expect(acceptWeight('*/*;q=0.2', JWT)).toBe(0.2);
    expect(acceptWeight('text/html, text/*', JWT)).toBe(0);
    expect(acceptWeight(`${JWT};q=0`, JWT)).toBe(0);
  });

  it('compares media types without regard to case or spaces, and reads q among other parameters', () => {
    expect(acceptWeight(' Application/Token-Introspection+JWT ; charset=utf-8 ; Q=0.3 ', JWT)).toBe(0.3);
  });

  it('ignores a range whose weight is malformed', () => {
    for (const q of ['2', '1.5', '0.1234', 'abc', '-1', '']) expect({ q, weight: acceptWeight(`${JWT};q=${q}, */*;q=0.1`, JWT) }).toEqual({ q, weight: 0.1 });
  });
});

describe('wantsSignedAnswer', () => {
  it('is false without an Accept header naming the signed type, and decided by weights otherwise (ties to the signed type)', () => {
    expect(wantsSignedAnswer(undefined)).toBe(false);
    expect(wantsSignedAnswer('*/*')).toBe(false);
    expect(wantsSignedAnswer('application/jwt')).toBe(false);
    expect(wantsSignedAnswer(JWT)).toBe(true);
    expect(wantsSignedAnswer(`${JWT}, application/json`)).toBe(true);
    expect(wantsSignedAnswer(`${JWT};q=0.5, application/json;q=0.5`)).toBe(true);
    expect(wantsSignedAnswer(`${JWT};q=0.4, application/json;q=0.5`)).toBe(false);
    expect(wantsSignedAnswer(`${JWT};q=0`)).toBe(false);
  });
});
