import { describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { createDevicePollPolicy } from '../../../../src/oauth/device/device-poll-policy.ts';
import { DEVICE_CODE_GRACE_MS } from '../../../../src/oauth/adapter/oidc-adapter.ts';
import { createMemoryEphemeralStore } from '../../../../src/store/ephemeral/memory-ephemeral-store.ts';

// The PKCE part of the device poll policy on the in-process store with an injected clock (the
// Redis store passes the same store contract; the whole flow runs in test/integration/oauth-flows).
describe('device-code PKCE', () => {
  function setup() {
    let now = Date.UTC(2026, 10, 22);
    const store = createMemoryEphemeralStore({ clock: () => now });
    const policy = createDevicePollPolicy({ store, intervalSeconds: 5 });
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    return { policy, verifier, challenge, advance: (ms: number) => (now += ms) };
  }

  it('checks the verifier against the challenge', async () => {
    const { policy, verifier, challenge } = setup();
    await policy.started('code-1', 600, challenge);
    expect(await policy.verifyPkce('code-1', verifier)).toBe('ok');
    expect(await policy.verifyPkce('code-1', undefined)).toBe('missing_verifier');
    expect(await policy.verifyPkce('code-1', randomBytes(32).toString('base64url'))).toBe('mismatch');
    expect(await policy.verifyPkce('code-2', verifier)).toBe('unexpected_verifier');
  });

  it('keeps the challenge as long as the expired code is kept, so a late poll is told expired_token', async () => {
    const { policy, verifier, challenge, advance } = setup();
    await policy.started('code-1', 600, challenge);
    advance(600_000 + DEVICE_CODE_GRACE_MS - 1000);
    expect(await policy.verifyPkce('code-1', verifier)).toBe('ok');
  });
});

// RFC 8628 §3.5: a client waits `interval` seconds between polls; measured where the requests
// arrive, network jitter makes some gaps a little shorter. Those are not too early.
describe('device-code polling interval', () => {
  function setup(intervalSeconds: number) {
    let now = Date.UTC(2026, 10, 22);
    const store = createMemoryEphemeralStore({ clock: () => now });
    return { policy: createDevicePollPolicy({ store, intervalSeconds }), advance: (ms: number) => (now += ms) };
  }

  it('takes a poll that arrives a little under the interval after the last, as jitter', async () => {
    const { policy, advance } = setup(5);
    expect(await policy.poll('code-1')).toBe('ok');
    advance(4_200);
    expect(await policy.poll('code-1')).toBe('ok');
  });

  it('tells a client polling clearly faster than the interval to slow down', async () => {
    const { policy, advance } = setup(5);
    expect(await policy.poll('code-1')).toBe('ok');
    advance(2_500);
    expect(await policy.poll('code-1')).toBe('slow_down');
    advance(3_000);
    expect(await policy.poll('code-1')).toBe('ok');
  });

  it('allows at most a fifth of a short interval as jitter', async () => {
    const { policy, advance } = setup(1);
    expect(await policy.poll('code-1')).toBe('ok');
    advance(700);
    expect(await policy.poll('code-1')).toBe('slow_down');
    advance(850);
    expect(await policy.poll('code-1')).toBe('ok');
  });
});
