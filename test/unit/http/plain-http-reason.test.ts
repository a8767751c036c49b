import { describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import { plainHttpReason } from '../../../src/http/raw-http.ts';

/** What plainHttpReason reads of a request: the peer's address and the headers. */
const request = (remoteAddress: string, headers: Record<string, string | string[]> = {}) => ({ socket: { remoteAddress }, headers }) as unknown as IncomingMessage;
const loopbackOnly = (address: string) => address === '127.0.0.1';

describe('why a request was refused as plain http (for the log)', () => {
  it('names what is missing: the header, TLS at the proxy, or trust in the proxy', () => {
    expect(plainHttpReason(request('127.0.0.1'), loopbackOnly)).toMatch(/from 127\.0\.0\.1 without X-Forwarded-Proto: .*proxy_set_header X-Forwarded-Proto \$scheme/);
    expect(plainHttpReason(request('127.0.0.1', { 'x-forwarded-proto': 'http' }), loopbackOnly)).toMatch(/with X-Forwarded-Proto http: the client reached the proxy without TLS/);
    expect(plainHttpReason(request('10.0.0.7', { 'x-forwarded-proto': 'HTTPS, http' }), loopbackOnly)).toMatch(
      /from 10\.0\.0\.7 with X-Forwarded-Proto https, but 10\.0\.0\.7 is not a trusted proxy: add it to TESSERA_TRUST_PROXY/,
    );
  });

  it('does not copy an odd header value into the log', () => {
    const reason = plainHttpReason(request('127.0.0.1', { 'x-forwarded-proto': 'tsr_pat_SECRET\nforged line' }), loopbackOnly);
    expect(reason).toMatch(/with X-Forwarded-Proto an unreadable value/);
    expect(reason).not.toContain('SECRET');
  });
});
