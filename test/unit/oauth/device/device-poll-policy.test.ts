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
