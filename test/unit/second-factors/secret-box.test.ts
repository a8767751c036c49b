import { describe, expect, it } from '@jest/globals';
import { createSecretBox, SecretBoxError } from '../../../src/second-factors/secret-box.ts';

const A = 'first-second-factor-key-0123456789abcdefghij';
const B = 'other-second-factor-key-0123456789abcdefghij';

describe('the second-factor secret box', () => {
  const secret = Buffer.from('12345678901234567890');

  it('seals with the newest key and opens with any key of the ring', () => {
    const sealed = createSecretBox([A]).seal(secret, 'totp:alice');
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{8}\./);
    expect(sealed).not.toContain(secret.toString('base64url'));
    expect(createSecretBox([B, A]).open(sealed, 'totp:alice').equals(secret)).toBe(true);
    expect(createSecretBox([B, A]).sealedWithOlderKey(sealed)).toBe(true);
    expect(createSecretBox([A, B]).sealedWithOlderKey(sealed)).toBe(false);
    // Each seal has its own IV.
    expect(createSecretBox([A]).seal(secret, 'totp:alice')).not.toBe(sealed);
  });

  it('refuses a value moved to another owner, altered, or sealed with a key not in the ring', () => {
    const box = createSecretBox([A]);
    const sealed = box.seal(secret, 'totp:alice');
    expect(() => box.open(sealed, 'totp:mallory')).toThrow(SecretBoxError);
    const parts = sealed.split('.');
    const flipped = Buffer.from(parts[3]!, 'base64url');
    flipped[0]! ^= 1;
    expect(() => box.open([...parts.slice(0, 3), flipped.toString('base64url'), parts[4]].join('.'), 'totp:alice')).toThrow(SecretBoxError);
    expect(() => createSecretBox([B]).open(sealed, 'totp:alice')).toThrow(/not configured/);
    expect(() => box.open('v2.x.y.z.w', 'totp:alice')).toThrow(/format/);
  });
});
