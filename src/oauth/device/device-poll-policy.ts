import { timingSafeEqual } from 'node:crypto';
import { sha256Base64url } from '../../shared/sha256.ts';
import type { EphemeralStore } from '../../store/ephemeral/ephemeral-store.ts';
import { DEVICE_CODE_GRACE_MS } from '../adapter/oidc-adapter.ts';

/**
 * What oidc-provider leaves out of the device grant (RFC 8628): the polling interval with
 * slow_down, and PKCE for public device clients (a code_challenge at the device endpoint,
 * verified against the code_verifier on every poll).
 */
export interface DevicePollPolicy {
  /** Called when a device code is issued. */
  started(deviceCode: string, expiresInSeconds: number, codeChallenge?: string): Promise<void>;
  /** 'slow_down' when this poll comes clearly sooner than the interval after the previous one. */
  poll(deviceCode: string): Promise<'ok' | 'slow_down'>;
  /** Checks the verifier against the challenge sent at the device endpoint, if any. */
  verifyPkce(deviceCode: string, codeVerifier: string | undefined): Promise<'ok' | 'missing_verifier' | 'mismatch' | 'unexpected_verifier'>;
}

const digest = sha256Base64url;

/** RFC 7636 §4.1: 43–128 characters of [A-Z a-z 0-9 - . _ ~]. */
export const CODE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
/** An S256 challenge: base64url of a SHA-256 digest. */
export const CODE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

export function createDevicePollPolicy({ store, intervalSeconds }: { store: EphemeralStore; intervalSeconds: number }): DevicePollPolicy {
  // RFC 8628 §3.5 counts the interval at the client; where polls arrive, network jitter shortens
  // some gaps. Up to a fifth of the interval (at most a second) early is still on time.
  const markerMs = intervalSeconds * 1000 - Math.min(1000, intervalSeconds * 200);
  const keys = (deviceCode: string) => {
    const tag = `{device:${digest(deviceCode)}}`;
    return { poll: `${tag}:last-poll`, pkce: `${tag}:pkce` };
  };
  return {
    async started(deviceCode, expiresInSeconds, codeChallenge) {
      if (!codeChallenge) return;
      // Kept as long as the adapter keeps the code past its expiry, so that a late poll with its
      // verifier is answered expired_token (RFC 8628 §3.5), not a PKCE complaint.
      await store.set(keys(deviceCode).pkce, codeChallenge, { ttlMs: Math.max(1, expiresInSeconds) * 1000 + DEVICE_CODE_GRACE_MS });
    },
    async poll(deviceCode) {
      // One marker per device code that lives for the interval less the jitter allowed: a poll that
      // finds it is too early. (A client told to slow down waits interval + 5 s, which passes.)
      const first = await store.set(keys(deviceCode).poll, '1', { ttlMs: markerMs, onlyIfAbsent: true });
      return first ? 'ok' : 'slow_down';
    },
    async verifyPkce(deviceCode, codeVerifier) {
      const challenge = await store.get(keys(deviceCode).pkce);
      if (!challenge) return codeVerifier === undefined ? 'ok' : 'unexpected_verifier';
      if (codeVerifier === undefined) return 'missing_verifier';
      const computed = Buffer.from(sha256Base64url(codeVerifier));
      const expected = Buffer.from(challenge);
      return computed.length === expected.length && timingSafeEqual(computed, expected) ? 'ok' : 'mismatch';
    },
  };
}
