import { describe, expect, it } from '@jest/globals';
import { createShownOnce } from '../../../src/http/shown-once.ts';
import { createMemoryEphemeralStore } from '../../../src/store/ephemeral/memory-ephemeral-store.ts';

describe('a secret shown once', () => {
  const SECRET = 'a-client-secret-value-0123456789';

  it('is given to the session that kept it, once', async () => {
    const shown = createShownOnce({ ephemeral: createMemoryEphemeralStore(), ttlMs: 60_000 });
    const handle = await shown.keep('session-a', SECRET);
    expect(handle).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(handle).not.toContain(SECRET);
    expect(await shown.take('session-a', handle)).toBe(SECRET);
    expect(await shown.take('session-a', handle)).toBeNull();
  });

  it('is given to no other session, and is gone after that attempt', async () => {
    const shown = createShownOnce({ ephemeral: createMemoryEphemeralStore(), ttlMs: 60_000 });
    const handle = await shown.keep('session-a', SECRET);
    expect(await shown.take('session-b', handle)).toBeNull();
    expect(await shown.take('session-a', handle)).toBeNull();
  });

  it('keeps only ciphertext, under a digest of the handle', async () => {
    const ephemeral = createMemoryEphemeralStore();
    const written: { key: string; value: string }[] = [];
    const watched = { ...ephemeral, set: async (key: string, value: string, options: Parameters<typeof ephemeral.set>[2]) => (written.push({ key, value }), ephemeral.set(key, value, options)) };
    const shown = createShownOnce({ ephemeral: watched, ttlMs: 60_000 });
    const handle = await shown.keep('session-a', SECRET);
    expect(written).toHaveLength(1);
    expect(written[0]!.key).not.toContain(handle);
    expect(written[0]!.value).not.toContain(SECRET);
    expect(written[0]!.value).not.toContain(Buffer.from(SECRET).toString('base64url'));
  });

  it('answers null for a handle it never gave, malformed or well-formed, and for one expired', async () => {
    let now = 1_000_000;
    const shown = createShownOnce({ ephemeral: createMemoryEphemeralStore({ clock: () => now }), ttlMs: 60_000 });
    expect(await shown.take('session-a', 'x')).toBeNull();
    expect(await shown.take('session-a', 'A'.repeat(43))).toBeNull();
    const handle = await shown.keep('session-a', SECRET);
    now += 60_001;
    expect(await shown.take('session-a', handle)).toBeNull();
  });
});
